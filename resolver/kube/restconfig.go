package kube

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/version"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the client configuration for the --kubeconfig flag.
//
// A non-empty kubeconfig is the path of a kubeconfig file, used with its
// current context. An empty one means: the in-cluster configuration (the
// pod's service account) when running in a pod, else the files in
// $KUBECONFIG, else ~/.kube/config, as kubectl does.
//
// The configuration asks for protobuf, which costs the API server and
// peerdns less than JSON for large lists of slices, and identifies itself
// as "peerdns/<version>".
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	setClientDefaults(cfg)
	return cfg, nil
}

// setClientDefaults selects protobuf and sets peerdns's user agent.
func setClientDefaults(cfg *rest.Config) {
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.UserAgent = "peerdns/" + version.Version
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("load in-cluster configuration: %w", err)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // $KUBECONFIG, then ~/.kube/config
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no Kubernetes configuration: not running in a pod, $KUBECONFIG unset and ~/.kube/config missing; set --kubeconfig")
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}
