package ids

import (
	"testing"

	"github.com/google/uuid"
)

func TestNewIsUniqueVersion4UUID(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := New()
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("%q is not a UUID: %v", id, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: version %d, variant %s; want 4, RFC4122", id, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("duplicate ID %q", id)
		}
		seen[id] = true
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}
