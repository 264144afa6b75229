package discovery

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// The agent's own messages, carried as memberlist user messages. The first
// byte says which.
const (
	msgView  byte = 'v' // a member's view of the membership, gossiped
	msgLeave byte = 'l' // "I am leaving", sent reliably before Leave
)

type viewMsg struct {
	Name    string `json:"n"`
	Hash    uint64 `json:"h"`
	Members int    `json:"c"`
	Sent    int64  `json:"t"`
}

// delegates implements memberlist's delegate interfaces for an Agent.
// memberlist calls them from its network goroutines, several while holding
// its node lock: they only record into the membership table and counters,
// and never call back into memberlist.
type delegates struct {
	a *Agent
}

var (
	_ memberlist.Delegate         = delegates{}
	_ memberlist.EventDelegate    = delegates{}
	_ memberlist.AliveDelegate    = delegates{}
	_ memberlist.MergeDelegate    = delegates{}
	_ memberlist.ConflictDelegate = delegates{}
	_ memberlist.PingDelegate     = delegates{}
)

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// NotifyJoin: a member is alive for the first time, or again after being
// dead or having left (possibly at a new address).
func (d delegates) NotifyJoin(n *memberlist.Node) {
	d.a.table.join(n.Name, nodeAddr(n))
	d.a.log.Info("member joined", "member", n.Name, "address", nodeAddr(n))
}

// NotifyLeave fires for a graceful leave and for a member declared dead
// alike; the table tells them apart by the leave announcement.
func (d delegates) NotifyLeave(n *memberlist.Node) {
	d.a.table.leave(n.Name)
	state, _ := d.a.table.stateOf(n.Name)
	d.a.log.Info("member gone", "member", n.Name, "address", nodeAddr(n), "state", state)
}

func (d delegates) NotifyUpdate(n *memberlist.Node) {
	d.a.table.update(n.Name, nodeAddr(n))
}

// NotifyAlive rejects alive messages about names outside the expected set,
// wherever they come from (a join, gossip or anti-entropy), so such a node
// never becomes a member.
func (d delegates) NotifyAlive(n *memberlist.Node) error {
	if _, ok := d.a.set.Contains(n.Name); !ok {
		d.a.metrics.rejected.WithLabelValues("unknown_name").Inc()
		return fmt.Errorf("node %q is outside the expected set %s", n.Name, d.a.setString())
	}
	return nil
}

// NotifyMerge refuses a join with a cluster that holds live nodes outside
// the expected set: that is another cluster, not ours.
func (d delegates) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.State != memberlist.StateAlive && n.State != memberlist.StateSuspect {
			continue
		}
		if _, ok := d.a.set.Contains(n.Name); !ok {
			d.a.metrics.rejected.WithLabelValues("unknown_name").Inc()
			return fmt.Errorf("refusing to merge: node %q is outside the expected set %s", n.Name, d.a.setString())
		}
	}
	return nil
}

func (d delegates) NotifyConflict(existing, other *memberlist.Node) {
	d.a.metrics.nameConflicts.Inc()
	d.a.log.Warn("name conflict: a member with this name is already known at another address",
		"member", existing.Name, "known_address", nodeAddr(existing), "new_address", nodeAddr(other))
}

func (d delegates) AckPayload() []byte { return nil }

func (d delegates) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, _ []byte) {
	d.a.table.ack(n.Name, rtt)
}

func (d delegates) NodeMeta(int) []byte { return nil }

// NotifyMsg handles the agent's own messages. It runs on memberlist's packet
// loop, so it only decodes and records.
func (d delegates) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgView:
		var v viewMsg
		if err := json.Unmarshal(b[1:], &v); err != nil {
			d.a.log.Debug("dropping malformed view message", "err", err)
			return
		}
		d.a.table.setView(v.Name, view{Hash: v.Hash, Members: v.Members, Sent: v.Sent})
	case msgLeave:
		d.a.table.leaving(string(b[1:]))
	}
}

func (d delegates) GetBroadcasts(overhead, limit int) [][]byte {
	return d.a.queue.GetBroadcasts(overhead, limit)
}

func (d delegates) LocalState(bool) []byte            { return nil }
func (d delegates) MergeRemoteState(_ []byte, _ bool) {}

// viewBroadcast carries this agent's view; a newer one replaces an older one
// still in the queue.
type viewBroadcast []byte

func (b viewBroadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.Name()
}
func (b viewBroadcast) Name() string    { return "view" }
func (b viewBroadcast) Message() []byte { return b }
func (b viewBroadcast) Finished()       {}

func encodeView(v viewMsg) []byte {
	data, _ := json.Marshal(v)
	return append([]byte{msgView}, data...)
}

// classifyLog counts conditions memberlist only reports in its log.
func (a *Agent) classifyLog(msg string) {
	switch {
	case strings.Contains(msg, "unacceptable label"):
		a.metrics.rejected.WithLabelValues("label").Inc()
	case strings.Contains(msg, "Decrypt packet failed"),
		strings.Contains(msg, "no installed keys could decrypt"),
		strings.Contains(msg, "encryption is configured but remote state is not encrypted"),
		strings.Contains(msg, "remote state is encrypted and encryption is not configured"):
		a.metrics.rejected.WithLabelValues("key").Inc()
	}
}
