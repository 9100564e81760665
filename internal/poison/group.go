package poison

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// GroupIDLen is the length of a group ID: hexadecimal digits.
const GroupIDLen = 12

// GroupID returns the ID of the group of poisoned messages that the handler
// poisoned, consuming topic, for reasons with this fingerprint (see
// Fingerprint): the first GroupIDLen (12) lower-case hexadecimal digits of
// the SHA-256 of topic, handler and fingerprint joined by NUL bytes. It is
// stable: the same group has the same ID in every run and every version of
// eventfx that keeps the Fingerprint rules.
func GroupID(topic, handler, fingerprint string) string {
	sum := sha256.Sum256([]byte(topic + "\x00" + handler + "\x00" + fingerprint))
	return hex.EncodeToString(sum[:])[:GroupIDLen]
}

// ValidGroupID reports why id is not a group ID (GroupIDLen lower-case
// hexadecimal digits, as GroupID returns), or nil.
func ValidGroupID(id string) error {
	if len(id) != GroupIDLen || !isLowerHex(id) {
		return fmt.Errorf("%q is not a group ID (%d lower-case hexadecimal digits, as poison stats shows)", id, GroupIDLen)
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// GroupID returns the ID of the record's group: GroupID of its original
// topic, its handler and the Fingerprint of its reason.
func (p Record) GroupID() string { return GroupID(p.Topic, p.Handler, Fingerprint(p.Reason)) }

// Seen is when the message was poisoned: PoisonedAt, or, when the record
// does not say, the poison record's Timestamp. It is zero when neither is
// known.
func (p Record) Seen() time.Time {
	if !p.PoisonedAt.IsZero() {
		return p.PoisonedAt
	}
	return p.Timestamp
}

// Group is a class of poisoned messages: those that one handler, consuming
// one topic, poisoned for reasons with the same Fingerprint. Replaying a
// group (ReplayOptions.Group) once its cause is fixed replays them all,
// each to the consumer group that poisoned it.
//
// The service is not part of the class: handlers of the same name in two
// services, failing the same way, are one group, with both in Services.
// Adding it would change every group's ID, which GroupID keeps stable
// across versions (an ID from an earlier `poison stats` still selects the
// same messages).
type Group struct {
	// ID is GroupID(Topic, Handler, Fingerprint).
	ID string
	// Topic is the original topic, Handler the handler that poisoned the
	// messages; either is "" when the records do not say.
	Topic   string
	Handler string
	// Fingerprint is the reasons' Fingerprint.
	Fingerprint string
	// Services are the services of the group's records (Record.Service),
	// sorted, each once; those that name none are left out.
	Services []string
	// Example is one reason as it is, that of the message seen last (on
	// a tie, the last on the poison topic by partition and offset).
	Example string
	// Count is the number of poison records in the group, AlreadyReplayed
	// how many of them were already replayed (the replay ledger).
	Count           int
	AlreadyReplayed int
	// FirstSeen and LastSeen are the earliest and the latest Record.Seen
	// of the group (in UTC); zero when no record says.
	FirstSeen, LastSeen time.Time
}

// GroupRecords groups records by GroupID. The groups come the most numerous
// first; among as many, the one seen last first; then by ID.
func GroupRecords(recs []Record) []Group {
	byID := map[string]*Group{}
	latest := map[string]Record{} // the record seen last, per group
	for _, p := range recs {
		fp := Fingerprint(p.Reason)
		id := GroupID(p.Topic, p.Handler, fp)
		g := byID[id]
		if g == nil {
			g = &Group{ID: id, Topic: p.Topic, Handler: p.Handler, Fingerprint: fp}
			byID[id] = g
		}
		g.Count++
		if p.Service != "" && !slices.Contains(g.Services, p.Service) {
			g.Services = append(g.Services, p.Service)
		}
		if p.AlreadyReplayed {
			g.AlreadyReplayed++
		}
		if seen := p.Seen().UTC(); !seen.IsZero() {
			if g.FirstSeen.IsZero() || seen.Before(g.FirstSeen) {
				g.FirstSeen = seen
			}
			if seen.After(g.LastSeen) {
				g.LastSeen = seen
			}
		}
		if l, ok := latest[id]; !ok || seenAfter(p, l) {
			latest[id] = p
		}
	}
	out := make([]Group, 0, len(byID))
	for id, g := range byID {
		g.Example = latest[id].Reason
		slices.Sort(g.Services)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			b.LastSeen.Compare(a.LastSeen),
			cmp.Compare(a.ID, b.ID),
		)
	})
	return out
}

// seenAfter reports whether a was seen after b, or, seen at the same time,
// is after b on the poison topic (by partition, then offset).
func seenAfter(a, b Record) bool {
	return cmp.Or(
		a.Seen().Compare(b.Seen()),
		cmp.Compare(a.PoisonPartition, b.PoisonPartition),
		cmp.Compare(a.PoisonOffset, b.PoisonOffset),
	) > 0
}

// Stats returns the groups of the poisoned messages on the poison topic
// (GroupRecords of List): what `eventfx poison stats` shows. It reads as
// List does; on an error, it returns no group.
func (c *Client) Stats(ctx context.Context, topic string) ([]Group, error) {
	recs, err := c.List(ctx, topic)
	if err != nil {
		return nil, err
	}
	return GroupRecords(recs), nil
}
