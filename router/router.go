// Package router is the extension point of the router an eventfx
// subscriber runs (app.SubscriberModule): observers, which see every
// delivery of every handler, as the service's tracing and metrics do.
//
// # The chain
//
// Each message a handler consumes goes through these steps, in this
// order. The order is a contract: it decides how often a message is tried,
// what is poisoned and what an observer sees.
//
//  1. Targeted replay: a message replayed from the poison queue for
//     another consumer group (header eventfx_replay_for) is acknowledged
//     without running anything else, observers included.
//  2. Correlation ID: the incoming correlation_id, or, for a message
//     without one, its own message ID (it starts a conversation). The
//     delivery's context carries the message, its correlation ID and the
//     handler's logger (the accessors of package handlers).
//  3. Observers' Received, in order.
//  4. Retry: the first attempt, then retries with exponential backoff and
//     jitter while the error is not permanent (retry.*). For each attempt:
//     a. observers' AttemptStarted, in order (a span starts here);
//     b. the per-attempt timeout (retry.attempt_timeout), a fresh one for
//     each attempt;
//     c. the panic recoverer: a panic is an error like any other, its
//     stack goes to the log;
//     d. the handler, then the publish of what it emits (to its publish
//     topic, through the observers' Publish): a failed publish fails the
//     attempt;
//     e. observers' AttemptEnded, in reverse order.
//  5. At debug level, one log line of the handling's result.
//  6. Poison queue: a message whose handling finally failed is written to
//     poison.topic with the poison headers and acknowledged; one whose
//     delivery was cancelled by shutdown is nacked instead (delivered
//     again after the restart), as is one the poison topic could not take.
//  7. Observers' Delivered, in reverse order, with the outcome.
//
// # Observers
//
// The service's observers run in this order: tracing (app.TracingModule),
// metrics (app.MetricsModule), then the ones registered with app.Observe,
// in the order given there.
//
// An observer is the one hook inside the chain: its Context derives each
// delivery's context, its Publish wraps what the handler emits, and the
// others see each step. Behaviour of your own around a handler (an
// authorization check, a cache) belongs in the function you give
// handlers.New, which runs at step 4d with retries and poisoning around it.
package router

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// HandlerInfo describes a handler to its observers.
type HandlerInfo struct {
	// Name is the handler's name, Topic the topic it consumes and
	// PublishTopic the one it emits to ("" if none).
	Name, Topic, PublishTopic string
	// ConsumerGroup is the handler's consumer group.
	ConsumerGroup string
}

// Outcome is how a delivery ended.
type Outcome int

const (
	// Succeeded: the handler succeeded (after retries, maybe); acknowledged.
	Succeeded Outcome = iota
	// Poisoned: the handling finally failed and the message went to the
	// poison queue; acknowledged.
	Poisoned
	// Failed: the handling failed and the poison queue could not be
	// written; nacked, delivered again.
	Failed
	// Interrupted: shutdown cancelled the delivery; nacked, delivered
	// again after the restart.
	Interrupted
)

// Hooks are what an observer does for one handler. Any may be nil. They run
// on the message's goroutine, at the chain's steps (see the package doc),
// and return before the next step: nothing of theirs is on the stack while
// the handler runs.
type Hooks struct {
	// Received is called when a delivery starts (step 3).
	Received func(msg *message.Message)
	// Delivered is called with the delivery's final outcome and the number
	// of attempts made (step 7).
	Delivered func(msg *message.Message, outcome Outcome, attempts int)
	// AttemptStarted is called before each attempt, with handlers.Attempt
	// in msg's context. It may replace msg's context, e.g. with a span's:
	// the handler gets it, AttemptEnded sees it, then the chain restores
	// the delivery's.
	AttemptStarted func(msg *message.Message, attempt int)
	// AttemptEnded is called after each attempt with its duration and
	// error.
	AttemptEnded func(msg *message.Message, attempt int, took time.Duration, err error)
	// Publish wraps the publisher of the handler's emitted events (not the
	// poison queue's); observers wrap in order, the first innermost.
	Publish func(message.Publisher) message.Publisher
	// Context derives, from msg, values for its delivery context (e.g.
	// the trace context of its headers). It is called lazily: the first
	// time anyone asks the delivery context for a value the chain does not
	// hold itself, if ever. When several observers set it, each derives
	// from the previous one's context, in order.
	Context func(ctx context.Context, msg *message.Message) context.Context
}

// Observer instruments handlers (metrics, tracing): it returns its hooks
// for one handler, once, when the router is built. Observers run in order:
// the first one's Received and AttemptStarted first, its Delivered and
// AttemptEnded last, as middleware nesting would.
type Observer func(HandlerInfo) Hooks
