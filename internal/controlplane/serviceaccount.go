package controlplane

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// serviceAccountTokenTTL is the lifetime of the tokens ServiceAccountConfig
// hands out: longer than any test or demo session.
const serviceAccountTokenTTL = 24 * time.Hour

// ServiceAccountConfig creates (or reuses) the namespace, the
// ServiceAccount namespace/name, a ClusterRole "<namespace>:<name>" with
// exactly rules and a ClusterRoleBinding of the two, and returns a client
// configuration authenticating as that ServiceAccount with a bound token.
// Existing roles of the same name are replaced, so a test states the full
// permissions each time.
//
// It returns once RBAC grants every rule (authorization caches lag behind
// writes), so the first request made with the config is not refused.
func (cp *ControlPlane) ServiceAccountConfig(ctx context.Context, namespace, name string, rules []rbacv1.PolicyRule) (*rest.Config, error) {
	client, err := cp.adminClient()
	if err != nil {
		return nil, fmt.Errorf("service account %s/%s: %w", namespace, name, err)
	}
	roleName := namespace + ":" + name
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("service account %s/%s: create namespace: %w", namespace, name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("service account %s/%s: create: %w", namespace, name, err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: rules}
	if err := createOrUpdate(ctx, client.RbacV1().ClusterRoles(), role); err != nil {
		return nil, fmt.Errorf("service account %s/%s: cluster role: %w", namespace, name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: roleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	if err := createOrUpdate(ctx, client.RbacV1().ClusterRoleBindings(), binding); err != nil {
		return nil, fmt.Errorf("service account %s/%s: cluster role binding: %w", namespace, name, err)
	}

	ttl := int64(serviceAccountTokenTTL / time.Second)
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}},
		metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service account %s/%s: token: %w", namespace, name, err)
	}
	if err := waitGranted(ctx, client, "system:serviceaccount:"+namespace+":"+name, rules); err != nil {
		return nil, fmt.Errorf("service account %s/%s: %w", namespace, name, err)
	}
	return &rest.Config{
		Host:            cp.url,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caPEM},
	}, nil
}

// object is what createOrUpdate needs of the RBAC clients.
type object interface {
	*rbacv1.ClusterRole | *rbacv1.ClusterRoleBinding
	metav1.Object
}

type createUpdater[T object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
}

// createOrUpdate creates obj, or replaces the existing object of its name.
func createOrUpdate[T object](ctx context.Context, c createUpdater[T], obj T) error {
	_, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = c.Update(ctx, obj, metav1.UpdateOptions{})
	return err
}

// waitGranted polls SubjectAccessReviews until user may do the first verb
// on the first resource (or non-resource URL) of every rule.
func waitGranted(ctx context.Context, client kubernetes.Interface, user string, rules []rbacv1.PolicyRule) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, rule := range rules {
		spec := authorizationv1.SubjectAccessReviewSpec{User: user}
		switch {
		case len(rule.Verbs) == 0:
			continue
		case len(rule.NonResourceURLs) > 0:
			spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: rule.NonResourceURLs[0], Verb: rule.Verbs[0]}
		case len(rule.Resources) > 0 && len(rule.APIGroups) > 0:
			ra := &authorizationv1.ResourceAttributes{Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0]}
			if len(rule.ResourceNames) > 0 {
				ra.Name = rule.ResourceNames[0]
			}
			spec.ResourceAttributes = ra
		default:
			continue
		}
		for {
			review, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx,
				&authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("check permissions: %w", err)
			}
			if review.Status.Allowed {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("permissions %v not granted: %w", rule, ctx.Err())
			case <-tick.C:
			}
		}
	}
	return nil
}
