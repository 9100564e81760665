package poison

import (
	"regexp"
	"strconv"
	"strings"
)

// Fingerprint returns the failure class of a poison reason: the reason with
// the parts that differ from one message to the next (numbers, IDs, quoted
// values) replaced by placeholders, so that "order 1234 failed: timeout
// after 30s" and "order 98 failed: timeout after 5s" have the same
// fingerprint, "order <num> failed: timeout after <dur>". Together with the
// original topic and the handler, it makes a group (GroupID, Stats).
//
// The rules, applied in this order, each to every match left to right (a
// match that "stands alone" has no ASCII letter or digit right before or
// after it):
//
//  1. Invalid UTF-8 becomes U+FFFD; runs of white space (new lines
//     included) become one space; leading and trailing space is removed.
//  2. Quoted values become <str>: a string quoted with ", ' or ` right
//     after "=" (key="value"), and a character literal in single quotes
//     ('x', '\n': Go's %q of a rune, as in encoding/json's "invalid
//     character 'x'"). Other quoted text is kept, quotes and all, and the
//     rules apply inside it: it often names the cause (a field, a topic,
//     the error in a JSON body). A ' right after an ASCII letter or digit,
//     or after '>', is an apostrophe (can't), not a quote; " and ' take
//     backslash escapes; a quote that is never closed is kept.
//  3. E-mail addresses (local@domain.tld) become <email>.
//  4. UUIDs (8-4-4-4-12 hexadecimal digits, either case), standing alone,
//     become <uuid>.
//  5. Hexadecimal numbers written 0x… (pointers, flags), standing alone,
//     become <hex>.
//  6. Runs of 8 or more hexadecimal digits that hold at least one digit and
//     one letter (trace IDs, hashes, object IDs), standing alone, become
//     <hex>.
//  7. Words (runs of ASCII letters and digits) of 8 or more characters in
//     which a digit comes before a letter (random IDs: ULIDs,
//     "cus_NffrFeUfNV2Hib", "ord_2xK9fLm7") become <id>. Words that digits
//     only end (OrderPlacedV2) are left to rule 9.
//  8. Go durations (30s, 1.5s, 250ms, 1h2m3s), standing alone, become
//     <dur>.
//  9. Numbers (runs of ASCII digits, with dot-separated groups: 42, 3.14,
//     127.0.0.1) become <num>, wherever they are: "order 1234",
//     "order-1234", "INV2024001" and "int64" become "order <num>",
//     "order-<num>", "INV<num>" and "int<num>".
//
// As Sentry's message parameterization does, Fingerprint replaces quoted
// strings only where they are values: replacing every quoted string would
// merge distinct causes.
//
// Fingerprint is deterministic, never fails, and applying it to its own
// result changes nothing. The fingerprint never depends on the value of a
// digit, except that 0x starts a hexadecimal number: reasons that differ
// only in digits 1 to 9 have the same fingerprint. Its known limits: IDs
// without digits (all letters) and quoted text that is not a value (rule 2)
// are kept, so they split a class; and a hexadecimal ID of under 8 digits
// is not recognised as one.
func Fingerprint(reason string) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(reason, "\uFFFD")), " ")
	s = replaceQuoted(s)
	for _, r := range fingerprintRules {
		s = r.apply(s)
	}
	return s
}

// fingerprintRule replaces the matches of re that accept approves (all of
// them when accept is nil) by placeholder.
type fingerprintRule struct {
	re          *regexp.Regexp
	placeholder string
	accept      func(s string, i, j int) bool
}

// fingerprintRules are the rules 3 to 9 of Fingerprint, in order.
var fingerprintRules = []fingerprintRule{
	{regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+`), "<email>", nil},
	{regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`), "<uuid>", standsAlone},
	{regexp.MustCompile(`0[xX][0-9a-fA-F]+`), "<hex>", standsAlone},
	{regexp.MustCompile(`[0-9a-fA-F]{8,}`), "<hex>", func(s string, i, j int) bool {
		w := s[i:j]
		return standsAlone(s, i, j) && strings.ContainsAny(w, "0123456789") && strings.ContainsAny(w, "abcdefABCDEF")
	}},
	{regexp.MustCompile(`[A-Za-z0-9]{8,}`), "<id>", func(s string, i, j int) bool {
		w := s[i:j]
		d := strings.IndexAny(w, "0123456789")
		return d >= 0 && strings.LastIndexFunc(w, isASCIILetter) > d
	}},
	{regexp.MustCompile(`(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|μs|ms|s|m|h))+`), "<dur>", standsAlone},
	{regexp.MustCompile(`[0-9]+(?:\.[0-9]+)*`), "<num>", nil},
}

func (r fingerprintRule) apply(s string) string {
	locs := r.re.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		if r.accept != nil && !r.accept(s, l[0], l[1]) {
			continue
		}
		b.WriteString(s[last:l[0]])
		b.WriteString(r.placeholder)
		last = l[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// standsAlone reports whether s[i:j] has no ASCII letter or digit right
// before or after it.
func standsAlone(s string, i, j int) bool {
	return (i == 0 || !isASCIIAlnum(s[i-1])) && (j == len(s) || !isASCIIAlnum(s[j]))
}

func isASCIILetter(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }

func isASCIIAlnum(c byte) bool { return isASCIILetter(rune(c)) || '0' <= c && c <= '9' }

// replaceQuoted is rule 2 of Fingerprint. Quotes, '=', '>' and
// backslashes are ASCII, so scanning bytes is safe in UTF-8.
func replaceQuoted(s string) string {
	var b strings.Builder
	// unclosed[q]: a string opened by q was never closed, so no later q
	// closes one either (the scans agree after the later opener).
	var unclosed [256]bool
	for i := 0; i < len(s); {
		q := s[i]
		opens := q == '"' || q == '`' || q == '\'' && (i == 0 || !isASCIIAlnum(s[i-1]) && s[i-1] != '>')
		if opens && !unclosed[q] {
			end := closingQuote(s, i)
			if end > 0 {
				if quotedValue(s, i, end) {
					b.WriteString("<str>")
				} else {
					b.WriteByte(q)
					b.WriteString(replaceQuoted(s[i+1 : end-1]))
					b.WriteByte(q)
				}
				i = end
				continue
			}
			unclosed[q] = true
		}
		b.WriteByte(q)
		i++
	}
	return b.String()
}

// quotedValue reports whether the quoted string s[i:end] is a value: right
// after '=', or a Go character literal.
func quotedValue(s string, i, end int) bool {
	if i > 0 && s[i-1] == '=' {
		return true
	}
	if s[i] != '\'' {
		return false
	}
	_, err := strconv.Unquote(s[i:end])
	return err == nil
}

// closingQuote returns the index after the quote that closes the string
// opened at s[i], or -1 when none does.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++ // the escaped byte
		case s[j] == q:
			return j + 1
		}
	}
	return -1
}
