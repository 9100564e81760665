package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The key paths of Config are derived from its koanf tags, so that the
// environment, error messages and the struct cannot drift apart.

var durationType = reflect.TypeFor[time.Duration]()

// key is one leaf of the Config tree: a scalar, a list of scalars, or a list
// of structs (subscriber.routes).
type key struct {
	path string // YAML path, e.g. "kafka.consumer_group"
	typ  reflect.Type
}

// fromEnv reports whether an environment variable can set the key: a list
// of structs cannot be written as one string.
func (k key) fromEnv() bool {
	return k.typ.Kind() != reflect.Slice || k.typ.Elem().Kind() != reflect.Struct
}

// envName is the environment variable that sets the key at path.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// keys lists the leaf keys of Config in field order.
func keys() []key {
	var out []key
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for f := range t.Fields() {
			path := prefix + tagName(f)
			if f.Type.Kind() == reflect.Struct {
				walk(path+".", f.Type)
				continue
			}
			out = append(out, key{path: path, typ: f.Type})
		}
	}
	walk("", reflect.TypeFor[Config]())
	return out
}

// envKeys maps each environment variable name to the key it sets. It fails
// if two keys would share a name (a.b_c and a_b.c), which the config
// struct must never allow.
func envKeys() (map[string]key, error) {
	m := make(map[string]key)
	for _, k := range keys() {
		name := envName(k.path)
		if other, dup := m[name]; dup {
			return nil, fmt.Errorf("keys %s and %s both map to environment variable %s", other.path, k.path, name)
		}
		if name == EnvConfig {
			return nil, fmt.Errorf("key %s maps to %s, which names the config file", k.path, EnvConfig)
		}
		m[name] = k
	}
	return m, nil
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	return name
}

// segments splits a path such as "subscriber.routes[1].webhook.url" into
// "subscriber", "routes", "[1]", "webhook", "url".
func segments(path string) []string {
	var out []string
	for part := range strings.SplitSeq(path, ".") {
		name, index, ok := strings.Cut(part, "[")
		out = append(out, name)
		for ok {
			var idx string
			idx, index, ok = strings.Cut(index, "[")
			out = append(out, "["+idx)
		}
	}
	return out
}

// index parses a segment "[3]"; ok is false for a field name.
func index(seg string) (int, bool) {
	s, ok := strings.CutPrefix(seg, "[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	n, err := strconv.Atoi(s)
	return n, ok && err == nil && n >= 0
}

// typeAt is the Go type of the value at path in Config, or nil if no key
// has that path.
func typeAt(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for _, seg := range segments(path) {
		if _, ok := index(seg); ok {
			if t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
			continue
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		var found reflect.Type
		for f := range t.Fields() {
			if tagName(f) == seg {
				found = f.Type
			}
		}
		if found == nil {
			return nil
		}
		t = found
	}
	return t
}

// valueAt is the raw (decoded YAML or environment) value at path.
func valueAt(raw map[string]any, path string) (any, bool) {
	var v any = raw
	for _, seg := range segments(path) {
		if i, ok := index(seg); ok {
			list, isList := v.([]any)
			switch {
			case isList && i < len(list):
				v = list[i]
			case !isList && i == 0: // a single value decoded as a one-item list
			default:
				return nil, false
			}
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return v, true
}

// describeType says what a value of type t must be.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration with a unit, such as "30s"`
	case t.Kind() == reflect.Struct:
		return "a mapping of keys to values"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "a list of mappings"
	case t.Kind() == reflect.Slice:
		return "a list of strings"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case reflect.Zero(t).CanInt():
		return "a whole number"
	}
	return t.String()
}

// describeValue renders a raw, non-secret value for a message.
func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return shorten(fmt.Sprint(v))
}

// describeKind says what kind of value v is, without showing it.
func describeKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	}
	return "a number"
}
