package meta

import "strings"

// OneLine collapses s to one line: a header value (reason_poisoned), a
// log field or a CLI error must not span several.
func OneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
