package main

// An internal test: it validates the real wiring of main (build), which an
// external test package cannot reach. The process tests in main_test.go
// cover behaviour.

import (
	"testing"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
)

func TestBuildIsAValidApp(t *testing.T) {
	cfg := config.Config{}.WithDefaults()
	if err := fx.ValidateApp(app.Core(cfg), build(cfg)); err != nil {
		t.Fatalf("publisher app: %v", err)
	}
}
