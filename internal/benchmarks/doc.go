// Package benchmarks compares eventfx with what it is built on, side by side
// in one run: the bare Watermill router, watermill-kafka, and the raw
// franz-go client, on the same transport and the same embedded broker.
// Every benchmark reports msgs/s and the process's CPU time per message;
// read the ratios, not the absolute numbers. A shared machine varies from
// one repetition to the next: repeat, and compare medians (ratios does).
//
//	go test -run '^$' -bench . -benchmem -benchtime 100000x -count 5 ./internal/benchmarks | tee bench.txt
//	go run ./internal/benchmarks/ratios < bench.txt
//
// BenchmarkTimerLateness has no eventfx in it: it measures how late Go's
// timers fire under a load like BenchmarkKafkaConsumeIO's by key, which
// bounds what any framework reaches with a handler that sleeps.
//
// The Kafka benchmarks measure a steady rate: the clock starts at the first
// message handled (after the consumer group was joined) or, for publishing,
// after the client is connected and the topic exists.
package benchmarks
