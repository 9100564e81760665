package routing

import (
	"runtime"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
)

// TestIntakesOnePerProcessor: a handler gets an intake per processor, at
// most maxIntakes (internal/intake tests how they share the subscription).
func TestIntakesOnePerProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	var sub message.Subscriber // intakes does not call it
	assert.Len(t, intakes(sub), 3)
	runtime.GOMAXPROCS(1)
	assert.Len(t, intakes(sub), 1, "one processor, one intake")
	runtime.GOMAXPROCS(maxIntakes + 4)
	assert.Len(t, intakes(sub), maxIntakes, "intakes on many processors")
}
