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
	msgView      byte = 'v' // a member's view of the membership, gossiped
	msgLeave     byte = 'L' // leaveMsg, sent reliably before Leave
	msgDuplicate byte = 'd' // "two addresses claim this name", sent to both
)

// leaveMsg announces a graceful leave. memberlist hands a user message to
// NotifyMsg without its sender, so the sender states its own gossip
// address, and a receiver accepts the message only when that is the
// address it holds for the named member: a stale process under the same
// name (a force-deleted pod still running) cannot mark the live member as
// leaving, nor can a member announce another's leave. It is not
// authentication: whoever holds the gossip key can forge any message,
// memberlist's own included. (The first format, 'l' followed by a bare
// name, is ignored.)
type leaveMsg struct {
	Name string `json:"n"`
	Addr string `json:"a"`
}

// nodeMeta is what each agent gossips about itself in memberlist's node
// metadata (at most memberlist.MetaMaxSize bytes, JSON).
type nodeMeta struct {
	Version string `json:"v,omitempty"`
	Zone    string `json:"z,omitempty"`
	// Epoch is the sender's committed voting configuration epoch.
	Epoch uint64 `json:"e,omitempty"`
}

func decodeMeta(b []byte) nodeMeta {
	var m nodeMeta
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m) // unknown or malformed metadata: none
	}
	return m
}

// duplicateMsg tells the processes at Addrs that each claims Name; Held is
// the one the sender holds (empty from an agent that predates the field).
type duplicateMsg struct {
	Name  string   `json:"n"`
	Addrs []string `json:"a"`
	Held  string   `json:"h,omitempty"`
}

// viewMsg carries a member's view. Proc and Seq order it (see view); Sent,
// the sender's clock, is still sent for agents that predate them.
type viewMsg struct {
	Name    string `json:"n"`
	Hash    uint64 `json:"h"`
	Members int    `json:"c"`
	Proc    uint64 `json:"p,omitempty"`
	Seq     uint64 `json:"s,omitempty"`
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
	_ memberlist.ConflictDelegate = delegates{}
	_ memberlist.PingDelegate     = delegates{}
)

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// NotifyJoin: a member is alive for the first time, or again after being
// dead or having left (possibly at a new address).
func (d delegates) NotifyJoin(n *memberlist.Node) {
	d.a.table.join(n.Name, nodeAddr(n), decodeMeta(n.Meta))
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
	d.a.table.update(n.Name, nodeAddr(n), decodeMeta(n.Meta))
}

// NotifyAlive rejects alive messages about names outside the admitted set,
// wherever they come from (a join, gossip or anti-entropy), so such a node
// never becomes a member. Admitted names outside the voting configuration
// become learners.
func (d delegates) NotifyAlive(n *memberlist.Node) error {
	if _, ok := d.a.admit.Contains(n.Name); !ok {
		d.a.metrics.rejected.WithLabelValues("unknown_name").Inc()
		return fmt.Errorf("node %q is outside the admitted set %s", n.Name, d.a.setString())
	}
	return nil
}

// There is no MergeDelegate: it only sees the node list of a join or
// push/pull, while NotifyAlive sees every alive message however it
// arrives, so refusing a merge for an outsider kept nothing out that
// NotifyAlive did not already reject node by node.

// NotifyConflict: an alive message names a live member at another address.
// About this agent's own name it is a claimant to verify; about another
// name this agent is a witness and tells both addresses (memberlist drops
// the newcomer's messages here, so the claimants may never hear of each
// other otherwise). Either way the name is counted at most once: the table
// is keyed by name and keeps the first address.
func (d delegates) NotifyConflict(existing, other *memberlist.Node) {
	d.a.metrics.nameConflicts.Inc()
	d.a.log.Warn("name conflict: a member with this name is already known at another address",
		"member", existing.Name, "known_address", nodeAddr(existing), "new_address", nodeAddr(other))
	if existing.Name == d.a.cfg.NodeName {
		d.a.names.claim(nodeAddr(existing), nodeAddr(other))
		return
	}
	d.a.names.witness(existing.Name, nodeAddr(existing), nodeAddr(other))
}

func (d delegates) AckPayload() []byte { return nil }

func (d delegates) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, _ []byte) {
	d.a.table.ack(n.Name, nodeAddr(n), rtt)
}

// NodeMeta is this agent's version, zone and voting configuration epoch;
// the config validation keeps it within limit.
func (d delegates) NodeMeta(limit int) []byte {
	b := *d.a.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}

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
		d.a.table.setView(v.Name, view{Hash: v.Hash, Members: v.Members, Proc: v.Proc, Seq: v.Seq, Sent: v.Sent})
	case msgLeave:
		var m leaveMsg
		if err := json.Unmarshal(b[1:], &m); err != nil {
			d.a.log.Debug("dropping malformed leave message", "err", err)
			return
		}
		if !d.a.table.leaving(m.Name, m.Addr) {
			d.a.log.Warn("ignoring a leave announcement from an address the member does not have",
				"member", m.Name, "address", m.Addr)
		}
	case msgDuplicate:
		var m duplicateMsg
		if err := json.Unmarshal(b[1:], &m); err != nil {
			d.a.log.Debug("dropping malformed duplicate-name message", "err", err)
			return
		}
		if m.Name == d.a.cfg.NodeName {
			d.a.names.claim(m.Addrs...)
			d.a.names.heldAt(m.Held)
		}
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
// workaround: memberlist has no delegate or counter for packets dropped for
// a wrong cluster label or an undecryptable payload, only these log lines;
// a rewording in a memberlist release silently stops the counting
// (TestRejectsForeignNodes catches it).
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
