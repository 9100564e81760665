package main

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// line writes one logfmt-style line: words, then key=value pairs, values
// quoted when they are empty or hold spaces, quotes, '=' or control
// characters.
type line struct {
	b strings.Builder
}

func (l *line) word(s string) *line {
	l.sep()
	l.b.WriteString(s)
	return l
}

func (l *line) kv(k, v string) *line {
	l.sep()
	l.b.WriteString(k)
	l.b.WriteByte('=')
	l.b.WriteString(value(v))
	return l
}

func (l *line) sep() {
	if l.b.Len() > 0 {
		l.b.WriteByte(' ')
	}
}

func (l *line) writeTo(w io.Writer) error {
	l.b.WriteByte('\n')
	_, err := io.WriteString(w, l.b.String())
	return err
}

func value(v string) string {
	if v == "" || strings.ContainsAny(v, " \"=\\") || !printable(v) {
		return strconv.Quote(v)
	}
	return v
}

// payload renders a payload for a text line: as is when it is printable
// UTF-8 on one line, else quoted with Go escapes.
func payload(b []byte) string {
	if s := string(b); printable(s) {
		return s
	}
	return strconv.Quote(string(b))
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
