// Package keyorder is a Watermill subscriber on Kafka (franz-go's kgo) that
// processes the keys of one partition in parallel while keeping each key's
// records in order, and commits only what is safe.
//
// watermill-kafka hands out one message per partition at a time, so a
// service's concurrency is its number of assigned partitions: slow,
// I/O-bound handlers cap throughput at partitions / latency. This subscriber
// lifts that cap for keyed topics: records of different keys run
// concurrently, records of one key run one after the other, as on Kafka.
//
// # Design
//
// Lanes. Every (partition, key) pair is a lane; the records of a partition
// without a key (nil or empty) share one lane. A lane with work has one
// goroutine: it hands one message to the output channel, waits for its Ack
// or Nack, and only then releases the key's next record, so a key never runs
// twice at once and its order holds by construction. A lane whose queue is
// empty ends; goroutines are bounded by the keys with work.
//
// Nack. A nacked message is sent again, as a new message of the same record,
// after Config.NackResendSleep, on the same lane: only that key waits, the
// rest of the partition goes on. Watermill's Retry middleware thus blocks
// only the failing key, and a poison queue that acks releases it.
//
// Offset window. Each partition keeps the records polled from the first one
// not done yet, in offset order, each with a done flag. The committable
// offset is the end of the contiguous done prefix. It is committed
// synchronously every Config.CommitInterval, when a partition is revoked, and
// at Drain and Close; commits are serialised, so one computed before a revoke
// cannot land after it, and a committed offset never moves backwards.
// Auto-commit is off.
//
// Done-set in the commit metadata. Records done beyond the prefix are
// committed too, as the metadata string of the partition's offset commit:
// "ko1:" and the base64 of varint (gap, length) pairs of done offset spans
// after the committed offset (the idea of Confluent Parallel Consumer). It is
// kept below Kafka's default offset.metadata.max.bytes (4096); spans that do
// not fit are left out from the end, which only costs redeliveries. A member
// that is assigned the partition reads it with the committed offset and
// skips the records already done, so one abandoned record does not replay
// the whole partition behind it. Skipping keeps each key's order, because a
// key's done records always precede its undone ones.
//
// Rebalances. Rebalances wait only while a poll's records are filed into
// lanes (kgo.BlockRebalanceOnPoll). A revoked partition is fenced at the
// highest offset handed out; its lanes may still hand out the queued records
// below the fence, so the done prefix closes its holes, for up to
// Config.RevokeDrain. Then its done prefix and done-set are committed, the
// contexts of messages still in flight are cancelled, the partition is
// forgotten and, if paused, resumed (kgo's pauses outlive assignments). A
// lost partition is forgotten without a commit and its messages' contexts
// are cancelled.
//
// Backpressure. Polling stops while Config.MaxOutstanding records are
// polled and not done, and resumes at 75 % of it: this is the main brake. A
// key that keeps failing holds its partition's commit point while the other
// keys go on, and the records done behind it are not outstanding: a
// partition with Config.PartitionWindow of them is paused until they are
// back at 75 %, so one stuck key stalls only its partition and
// memory stays bounded. Only done records count, so a poll that brings many
// records of one partition does not pause it: pausing drops kgo's buffered
// fetches of the partition, and a resumed partition waits for its next
// fetch (the subscriber sets kgo.FetchMaxWait to DefaultFetchMaxWait; kgo's
// 5 s default would idle it for seconds). Config.MaxInFlight bounds the
// messages handed out and not yet acked or nacked.
//
// Contexts. A message's context carries the values of the Subscribe context
// but not its cancellation: Watermill's router cancels that context as soon
// as it starts closing, which would kill the handlers a drain waits for. A
// message's context ends when it is acked or nacked, when a drain or Close
// gives up waiting for it, or when its partition is revoked after
// RevokeDrain or lost. It carries the record's partition and offset
// (meta.Record).
//
// Shutdown. Drain stops handing out messages, waits for those handed out
// and commits; Close does the same bounded by RevokeDrain, leaves the group
// and closes the output channel. Cancelling a Subscribe context stops that
// subscription the same way.
//
// # Guarantees and limits
//
// Delivery is at least once. Order holds per key within a partition, which
// is per key on a topic whose producers partition by key. There is no order
// across keys. A record is redelivered after a crash (up to CommitInterval of
// work that the metadata did not record), after a drain or revoke that gave
// up on it, and if the done-set did not fit in the metadata.
//
// When a revoke gives up on a handler that ignores its context, the new
// owner of the partition may run that key while the old handler still
// runs: keep RevokeDrain above the handlers' timeouts, and RebalanceTimeout
// above RevokeDrain.
package keyorder
