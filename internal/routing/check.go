package routing

import (
	"errors"
	"fmt"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

// checkHandlers reports every wiring mistake in hs at once, one line each: missing
// or malformed names (see validName), names used twice, missing topics,
// handlers without a function.
func checkHandlers(hs []handlers.Handler) error {
	var errs []error
	first := make(map[string]handlers.Handler, len(hs))
	for i, h := range hs {
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("handler #%d (topic %q): name is required", i, h.Topic))
		} else if err := validName(h.Name); err != nil {
			errs = append(errs, fmt.Errorf("handler %q: %w", h.Name, err))
		} else if prev, dup := first[h.Name]; dup {
			errs = append(errs, fmt.Errorf("handler name %q is used twice: on topic %q and on topic %q; handler names must be unique in a service", h.Name, prev.Topic, h.Topic))
		} else {
			first[h.Name] = h
		}
		if h.Topic == "" {
			errs = append(errs, fmt.Errorf("handler %q: topic is required", h.Name))
		} else if err := config.ValidTopicName(h.Topic); err != nil {
			errs = append(errs, fmt.Errorf("handler %q: topic: %w", h.Name, err))
		}
		if h.PublishTopic != "" {
			if err := config.ValidTopicName(h.PublishTopic); err != nil {
				errs = append(errs, fmt.Errorf("handler %q: publish topic: %w", h.Name, err))
			}
		}
		if h.Func == nil {
			errs = append(errs, fmt.Errorf("handler %q: Func is nil", h.Name))
		}
		if h.Consume != "" && h.Consume != config.ConsumePartition && h.Consume != config.ConsumeKey {
			errs = append(errs, fmt.Errorf("handler %q: Consume must be %q or %q, got %q", h.Name, config.ConsumePartition, config.ConsumeKey, h.Consume))
		}
		if h.MaxInFlight < 0 {
			errs = append(errs, fmt.Errorf("handler %q: MaxInFlight must be positive, got %d", h.Name, h.MaxInFlight))
		}
	}
	return errors.Join(errs...)
}

// maxNameLen bounds a handler's name, which is part of its consumer group's.
const maxNameLen = 200

// validName reports whether name can name a handler: 1 to 200 letters,
// digits, '.', '_' or '-' (it ends the handler's consumer group name, and
// tables and metrics labels show it).
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must be 1 to %d characters, got %d", maxNameLen, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("name may hold only letters, digits, '.', '_' and '-', got %q", r)
		}
	}
	return nil
}
