package main

import (
	"errors"
	"fmt"
)

// Topics of the story.
const (
	ordersTopic   = "orders"
	paymentsTopic = "payments"
)

// OrderPlaced is published by the orders service.
type OrderPlaced struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"` // cents
	Region   string `json:"region"`
}

// Validate runs after decoding; an invalid order is poisoned at once, never
// retried.
func (o OrderPlaced) Validate() error {
	var errs []error
	if o.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if o.Amount <= 0 {
		errs = append(errs, fmt.Errorf("amount must be positive, got %d", o.Amount))
	}
	return errors.Join(errs...)
}

// EventKey keeps all events of one order on one partition, in order.
func (o OrderPlaced) EventKey() string { return o.ID }

// PaymentCaptured is emitted by billing when it charged an order.
type PaymentCaptured struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
	Region  string `json:"region"`
}

// EventKey keeps an order's payment on the order's partition.
func (p PaymentCaptured) EventKey() string { return p.OrderID }
