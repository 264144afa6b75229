// Package resolver is peerdns's DNS side: a Store of services that an
// endpoints source (resolver/kube) writes, a Handler that answers queries for
// the names of those services from it, and a Server that serves the Handler
// over UDP and TCP. It knows nothing of Kubernetes objects.
package resolver
