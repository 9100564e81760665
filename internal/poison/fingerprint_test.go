package poison_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventfx/eventfx/internal/poison"
)

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name, reason, want string
	}{
		{"empty", "", ""},
		{"nothing variable", "decode: unexpected EOF", "decode: unexpected EOF"},
		{"numbers and a duration", "order 1234 failed: timeout after 30s", "order <num> failed: timeout after <dur>"},
		{"other numbers, same class", "order 98 failed: timeout after 5s", "order <num> failed: timeout after <dur>"},
		{"white space collapsed", "  order\t1234\n failed  ", "order <num> failed"},
		{"numbers glued to words by punctuation", "order-1234 (ord_98) at 127.0.0.1:9092, 3.14%", "order-<num> (ord_<num>) at <num>:<num>, <num>%"},
		{"numbers after letters too", "invoice INV2024001 for user42: cannot unmarshal into int64 (OrderPlacedV2, v1.2.3)", "invoice INV<num> for user<num>: cannot unmarshal into int<num> (OrderPlacedV<num>, v<num>)"},
		{"durations", "retry in 1h2m3.5s, 250ms or 10µs", "retry in <dur>, <dur> or <dur>"},
		{"a number with letters is not a duration", "5min, 2nd, 30sec", "<num>min, <num>nd, <num>sec"},
		{"UUID, either case", "message 6ba7b810-9dad-11d1-80b4-00c04fd430c8 / 6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "message <uuid> / <uuid>"},
		{"0x hexadecimal", "nil pointer dereference [signal SIGSEGV code=0x1 addr=0x0 pc=0x4a5b2c]", "nil pointer dereference [signal SIGSEGV code=<hex> addr=<hex> pc=<hex>]"},
		{"hexadecimal IDs", "trace 4bf92f3577b34da6a3ce929d0e0e4736 object 507F1F77BCF86CD799439011", "trace <hex> object <hex>"},
		{"letters a-f alone are a word", "deadbeef cafebabe", "deadbeef cafebabe"},
		{"random IDs", "customer cus_NffrFeUfNV2Hib, order ord_2xK9fLm7, ULID 01ARZ3NDEKTSV4RRFFQ69G5FAV", "customer cus_<id>, order ord_<id>, ULID <id>"},
		{"e-mail addresses", "no account for jane.doe+test@example.co.uk", "no account for <email>"},
		{"a character literal is a value", "invalid character 'x' looking for beginning of value", "invalid character <str> looking for beginning of value"},
		{"escaped character literals", `invalid character '\'' or '\n' or '\u00e9' or 'é'`, "invalid character <str> or <str> or <str> or <str>"},
		{"a quoted string after = is a value", `level=error order="o 12" msg='no "x"' raw=` + "`a b`", "level=error order=<str> msg=<str> raw=<str>"},
		{"other quoted text is kept, normalised inside", `unknown topic "orders-2024", json: unknown field "amount"`, `unknown topic "orders-<num>", json: unknown field "amount"`},
		{"several characters in single quotes are text", "Duplicate entry '42' for key 'PRIMARY'", "Duplicate entry '<num>' for key 'PRIMARY'"},
		{"backquoted text", "unknown field `amount 2`", "unknown field `amount <num>`"},
		{"a value inside kept text", `webhook answered 400 Bad Request: {"error":"invalid character 'x' in body"}`, `webhook answered <num> Bad Request: {"error":"invalid character <str> in body"}`},
		{"an apostrophe is not a quote", "can't find 'x', don't retry", "can't find <str>, don't retry"},
		{"an unclosed quote is kept", `webhook answered 400: {"error":"bad 7`, `webhook answered <num>: {"error":"bad <num>`},
		{"escapes in double quotes", `parsing "a\"b" failed: x="c\"d"`, `parsing "a\"b" failed: x=<str>`},
		{"a webhook failure", `webhook http://127.0.0.1:9000/hook answered 500 Internal Server Error: {"order":"o-1234"}`,
			`webhook http://<num>:<num>/hook answered <num> Internal Server Error: {"order":"o-<num>"}`},
		{"a transport failure", "webhook http://10.0.0.7:8080/hook: dial tcp 10.0.0.7:8080: connect: connection refused",
			"webhook http://<num>:<num>/hook: dial tcp <num>:<num>: connect: connection refused"},
		{"invalid UTF-8", "bad \xff byte 7", "bad \uFFFD byte <num>"},
		{"next to other scripts", "订单1234失败", "订单<num>失败"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := poison.Fingerprint(tt.reason)
			assert.Equal(t, tt.want, got, "Fingerprint(%q)", tt.reason)
			assert.Equal(t, got, poison.Fingerprint(got), "a fingerprint is its own fingerprint")
		})
	}
}

func TestFingerprintSameCauseSameClass(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"other order, other timeout", "order 1234 failed: timeout after 30s", "order 98 failed: timeout after 5s", true},
		{"other message ID", "message 6ba7b810-9dad-11d1-80b4-00c04fd430c8 rejected", "message 1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed rejected", true},
		{"other input", `decode: invalid character 'x'`, `decode: invalid character '}'`, true},
		{"other value", `parse: amount="12a"`, `parse: amount="zz"`, true},
		{"other field", `json: unknown field "amount"`, `json: unknown field "currency"`, false},
		{"other error in a webhook's answer", `webhook answered 400 Bad Request: {"error":"invalid_amount","order":"o-1"}`, `webhook answered 400 Bad Request: {"error":"unknown_customer","order":"o-2"}`, false},
		{"other cause", "order 1234 failed: timeout after 30s", "order 1234 failed: out of stock", false},
		{"other status", "webhook answered 404 Not Found", "webhook answered 503 Service Unavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.same, poison.Fingerprint(tt.a) == poison.Fingerprint(tt.b),
				"%q → %q\n%q → %q", tt.a, poison.Fingerprint(tt.a), tt.b, poison.Fingerprint(tt.b))
		})
	}
}

func TestGroupID(t *testing.T) {
	id := poison.GroupID("orders", "bill", "order <num> failed")

	assert.Regexp(t, `^[0-9a-f]{12}$`, id)
	assert.NoError(t, poison.ValidGroupID(id))
	assert.Equal(t, "b94249e16817", id, "stable across runs and versions")
	assert.NotEqual(t, id, poison.GroupID("orders", "ship", "order <num> failed"), "another handler")
	assert.NotEqual(t, id, poison.GroupID("payments", "bill", "order <num> failed"), "another topic")
	assert.NotEqual(t, id, poison.GroupID("orders", "bill", "order <num> lost"), "another fingerprint")
	assert.NotEqual(t, poison.GroupID("a", "b\x00c", ""), poison.GroupID("a", "b", "c"), "fields cannot run into each other")
}

func TestValidGroupID(t *testing.T) {
	for _, bad := range []string{"", "b94249e1681", "b94249e168170", "B94249E16817", "b94249e1681g"} {
		assert.Error(t, poison.ValidGroupID(bad), "%q", bad)
	}
}
