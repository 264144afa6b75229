package resolver

// Store holds the services the resolver answers for. An endpoints source
// (resolver/kube) writes to it; the handler reads it. All methods are safe
// for concurrent use.
type Store struct {
	// filled in by the resolver's implementation
	synced bool
}

// NewStore returns an empty, unsynced store.
func NewStore() *Store { return &Store{} }

// Upsert replaces everything known about the service svc.Namespace/svc.Name
// with svc. It returns once the new data is what queries see. svc is not
// retained after Upsert returns; the caller may reuse it.
func (s *Store) Upsert(svc Service) {}

// Delete forgets the service namespace/name. Deleting an unknown service is
// a no-op.
func (s *Store) Delete(namespace, name string) {}

// SetSynced marks the initial state as loaded: from then on a name that does
// not exist is NXDOMAIN instead of SERVFAIL.
func (s *Store) SetSynced() {}

// Synced reports whether SetSynced was called.
func (s *Store) Synced() bool { return s.synced }
