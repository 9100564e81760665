package kafka

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestOutageLogsOnceEachWayAndRemindsAtItsPace(t *testing.T) {
	brokers := []string{"k1:9092"}
	down := errors.New("dial tcp k1:9092: connect: connection refused\nmore")
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var o outage
	var got []string
	probe := func(at time.Duration, err error) {
		if e, ok := o.observe(t0.Add(at), err, brokers); ok {
			got = append(got, e.level.String()+" "+e.msg)
		}
	}
	probe(0, nil)
	for s := 1; s <= 65; s++ { // down from 1s to 65s
		probe(time.Duration(s)*time.Second, down)
	}
	probe(66*time.Second, nil)
	probe(67*time.Second, nil)
	probe(68*time.Second, down) // flaps: a new outage
	probe(69*time.Second, nil)

	assert.Equal(t, []string{
		"WARN kafka unreachable: consuming and publishing wait for it",
		"WARN kafka still unreachable", // at 31s
		"WARN kafka still unreachable", // at 61s
		"INFO kafka reachable again: consuming and publishing resume",
		"WARN kafka unreachable: consuming and publishing wait for it",
		"INFO kafka reachable again: consuming and publishing resume",
	}, got)
}

func TestOutageLinesAreOneLineWithTheBrokersAndDuration(t *testing.T) {
	var o outage
	t0 := time.Now()
	e, _ := o.observe(t0, errors.New("a\nb"), []string{"k1:9092"})
	assert.Equal(t, slog.LevelWarn, e.level)
	assert.Equal(t, []any{"brokers", []string{"k1:9092"}, "error", "a b"}, e.attrs)
	e, _ = o.observe(t0.Add(24*time.Second), nil, []string{"k1:9092"})
	assert.Equal(t, []any{"brokers", []string{"k1:9092"}, "after", "24s"}, e.attrs)
}
