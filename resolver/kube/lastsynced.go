package kube

import (
	"time"

	"github.com/peerdns/peerdns/resolver"
)

var _ resolver.SyncStatus = (*Watcher)(nil)

// LastSynced is when the Sink's records were last known to match the API
// server (resolver.SyncStatus):
//
//   - the zero time before the initial list was written to the Sink;
//   - now, while every watch (one per informer: the EndpointSlices, and with
//     Config.ReadServices the unlabelled slices and the Services) has its
//     stream open, that is a watch request answered 200 whose response has
//     not ended, and the last request did not fail (a failed request, or a
//     stream that broke, counts until a later response or read succeeds);
//   - otherwise the time that last stopped being so (a stream ended, a
//     request failed or was refused), or the time the initial list was
//     written to the Sink if that is later.
//
// So an idle watch that is open is current however long it carries nothing
// (the API server sends only a bookmark about once a minute), and the age of
// LastSynced measures how long the watch has been broken: the API server
// unreachable or refusing, a watch ended and not yet reopened, a relist in
// progress. A watch the API server ends normally (each after 5–10 minutes)
// or the client ends (after an expiry) ages only until the reflector has
// opened the next. A stream that stays open while nothing arrives (a
// network partition that drops packets without a reset) counts as open
// until the client's transport gives up on the connection.
//
// With Config.Client, whose requests the Watcher cannot see, LastSynced is
// now from the moment the initial list was written to the Sink.
//
// It is safe for concurrent use and neither blocks nor allocates.
func (w *Watcher) LastSynced() time.Time {
	synced := w.syncedAt.Load()
	if synced == 0 {
		return time.Time{}
	}
	if w.health == nil {
		return time.Now()
	}
	until := w.health.currentUntil.Load()
	if until == currentNow {
		return time.Now()
	}
	return time.Unix(0, max(until, synced))
}
