// Command kubectl is the upstream kubectl at the pinned Kubernetes version,
// built from the module proxy. The chart tests use it for `kubectl auth
// can-i` as the charts' service accounts.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		// RunNoErrOutput leaves the error to CheckErr, which prints it as
		// kubectl does and exits with kubectl's exit codes.
		util.CheckErr(err)
	}
}
