package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Environment variables read by Load.
const (
	// EnvPrefix starts the environment variable of every key: EnvPrefix and
	// the key's path upper-cased, with "_" for ".". EVENTFX_RETRY_MAX_RETRIES
	// sets retry.max_retries, EVENTFX_KAFKA_BROKERS=a:9092,b:9092 sets
	// kafka.brokers (lists are comma-separated).
	EnvPrefix = "EVENTFX_"
	// EnvConfig names the config file when Load gets no path. It is the
	// only EnvPrefix variable that is not a key.
	EnvConfig = "EVENTFX_CONFIG"
)

// Load reads the configuration of the process: the YAML file at path, or
// when path is empty the one named by the command line's --config flag
// (os.Args: "--config FILE", "--config=FILE", or with one dash), else by
// EnvConfig; then the process environment's EnvPrefix variables. See
// LoadFrom. Load reads only --config from the command line and ignores
// every other argument, which belongs to the program; a --config without
// a file is an error.
func Load(path string) (Config, error) {
	if path == "" {
		var err error
		if path, err = configFlag(os.Args[1:]); err != nil {
			return Config{}, err
		}
	}
	return LoadFrom(path, os.Environ())
}

// configFlag returns the value of the --config flag among args, or "".
// Arguments after "--" are not flags.
func configFlag(args []string) (string, error) {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name != "config" || !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasValue {
			if i+1 == len(args) || args[i+1] == "" {
				return "", errors.New("--config needs a file: --config FILE")
			}
			value = args[i+1]
		}
		if value == "" {
			return "", errors.New("--config needs a file: --config FILE")
		}
		return value, nil
	}
	return "", nil
}

// LoadFrom reads the configuration from the YAML file at path (if path is
// empty, the file named by EnvConfig in environ, if any), overrides it with
// the EnvPrefix variables of environ ("KEY=value" entries, as os.Environ
// returns), applies defaults and validates it.
//
// Each EnvPrefix variable other than EnvConfig must name a key, and an
// empty one counts as unset. Lists of strings are comma-separated;
// subscriber.routes can be set only in the file.
//
// Unknown keys, values of the wrong type, unknown variables and invalid
// values are all reported in one error listing every problem (see
// FieldErrors); the returned Config is then zero.
func LoadFrom(path string, environ []string) (Config, error) {
	if path == "" {
		path = lookupEnv(environ, EnvConfig)
	}
	if path == "" {
		return load(nil, "", environ)
	}
	return load(file.Provider(path), path, environ)
}

// LoadYAML is LoadFrom with the file's content given as data. EnvConfig in
// environ is ignored.
func LoadYAML(data []byte, environ []string) (Config, error) {
	return load(yamlBytes(data), "", environ)
}

// load merges the YAML of src (if any) and the environment, decodes, applies
// defaults and validates. file names src in errors.
func load(src koanf.Provider, file string, environ []string) (Config, error) {
	where := ""
	if file != "" {
		where = " " + file
	}
	k := koanf.New(".")
	if src != nil {
		err := k.Load(src, yaml.Parser())
		if _, isRead := errors.AsType[*fs.PathError](err); isRead {
			return Config{}, fmt.Errorf("read config: %w", err) // names the file
		}
		if err != nil {
			return Config{}, fmt.Errorf("config%s: %w", where, err)
		}
	}

	envProblems, fromEnv, err := loadEnv(k, environ)
	if err != nil {
		return Config{}, err
	}

	var c Config
	err = k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			rejectBoolMismatch,
			rejectBareDuration,
			mapstructure.StringToTimeDurationHookFunc(),
			rejectInexactInt,
			mapstructure.StringToSliceHookFunc(","),
			trimSpaces,
		),
		// The environment gives strings: "3" must decode into an int. The
		// hooks above refuse the weak conversions that hide mistakes.
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		TagName:          "koanf",
	}})
	found, err := decodeProblems(err, k.Raw())
	if err != nil {
		return Config{}, fmt.Errorf("config%s: %w", where, err)
	}
	found = append(found, envProblems...)

	c = c.WithDefaults()
	var invalidValues problems
	invalidValues.config(c)
	for _, v := range invalidValues {
		// A value that failed to decode was left zero: do not also
		// report what its default leads to.
		if !slices.ContainsFunc(found, func(d FieldError) bool { return related(v.Path, d.Path) }) {
			found = append(found, v)
		}
	}

	for i, p := range found {
		if name, ok := fromEnv[keyPath(p.Path)]; ok {
			found[i].Msg += " (from " + name + ")"
		}
	}
	if err := invalid(where, found); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadEnv merges the EnvPrefix variables of environ into k. It returns a
// problem per variable that sets no key, and the variable that set each key.
func loadEnv(k *koanf.Koanf, environ []string) ([]FieldError, map[string]string, error) {
	known, err := envKeys()
	if err != nil {
		return nil, nil, err
	}
	var unknown []FieldError
	fromEnv := make(map[string]string)
	provider := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			key, ok := known[name]
			switch {
			case name == EnvConfig:
				return "", nil
			case !ok:
				unknown = append(unknown, FieldError{Path: name, Msg: "environment variable matches no config key"})
				return "", nil
			case !key.fromEnv():
				unknown = append(unknown, FieldError{Path: name, Msg: key.path + " can be set only in the config file"})
				return "", nil
			case value == "":
				return "", nil
			}
			fromEnv[key.path] = name
			return key.path, value
		},
	})
	if err := k.Load(provider, nil); err != nil {
		return nil, nil, fmt.Errorf("config from environment: %w", err)
	}
	return unknown, fromEnv, nil
}

// lookupEnv returns the value of the last entry of environ named name.
func lookupEnv(environ []string, name string) string {
	var v string
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// decodeProblems turns mapstructure's errors into FieldErrors. raw is the
// merged input, to quote the offending value (never for a secret). Other
// errors (a bug here, not in the config) are returned as err.
func decodeProblems(decodeErr error, raw map[string]any) (found []FieldError, err error) {
	var others []error
	var walk func(error)
	walk = func(e error) {
		switch e := e.(type) {
		case nil:
		case *mapstructure.DecodeError:
			var inner *mapstructure.DecodeError
			if errors.As(e.Unwrap(), &inner) {
				walk(e.Unwrap())
			} else {
				found = append(found, decodeProblem(e, raw)...)
			}
		case interface{ Unwrap() []error }: // errors.Join
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }: // Decode wraps a join in "decoding failed"
			walk(e.Unwrap())
		default:
			others = append(others, e)
		}
	}
	walk(decodeErr)
	return found, errors.Join(others...)
}

// decodeProblem describes one mapstructure DecodeError.
func decodeProblem(de *mapstructure.DecodeError, raw map[string]any) []FieldError {
	path, cause := de.Name(), de.Unwrap()
	// mapstructure v2.5 names the root by its Go type ("config.Config");
	// earlier versions by "". Either way it is the document's top level.
	path = strings.TrimPrefix(strings.TrimPrefix(path, rootTypeName), ".")

	// ErrorUnused lists the unknown keys of one mapping in one error.
	if unknown, ok := strings.CutPrefix(cause.Error(), "has invalid keys: "); ok {
		var out []FieldError
		for key := range strings.SplitSeq(unknown, ", ") {
			msg := "unknown key"
			if strings.Contains(key, ".") {
				msg += ` (nest keys: write "a: {b: 1}", not "a.b: 1")`
			}
			if path != "" {
				key = path + "." + key
			}
			out = append(out, FieldError{Path: key, Msg: msg})
		}
		return out
	}

	t := typeAt(path)
	if t == nil {
		return []FieldError{{Path: path, Msg: cause.Error()}}
	}
	msg := "must be " + describeType(t)
	v, ok := valueAt(raw, path)
	switch {
	case !ok || isSecret(path): // say nothing of the value
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		// A misplaced scalar here may be a secret one level too high.
		msg += ", got " + describeKind(v)
	default:
		msg += ", got " + describeValue(v)
	}
	return []FieldError{{Path: path, Msg: msg}}
}

// isSecret reports whether the key at path may hold a credential, so its
// value must not appear in messages. A webhook URL may embed a password.
func isSecret(path string) bool {
	segs := segments(path)
	switch segs[len(segs)-1] {
	case "password", "auth_token", "secret", "url":
		return true
	}
	return false
}

// keyPath is the key of a problem's path: "kafka.brokers" for
// "kafka.brokers[1]".
func keyPath(path string) string {
	p, _, _ := strings.Cut(path, "[")
	return p
}

// related reports whether one path is, or lies within, the other.
func related(a, b string) bool {
	within := func(inner, outer string) bool {
		return inner == outer || strings.HasPrefix(inner, outer+".") || strings.HasPrefix(inner, outer+"[")
	}
	return within(a, b) || within(b, a)
}

// Decode hooks.

// rejectBoolMismatch refuses what weak typing would turn into 1 or "0":
// a boolean for a non-boolean key, or a number for a boolean key.
func rejectBoolMismatch(from, to reflect.Type, data any) (any, error) {
	isBool := func(t reflect.Type) bool { return t.Kind() == reflect.Bool }
	isNumber := func(t reflect.Type) bool {
		return reflect.Zero(t).CanInt() || reflect.Zero(t).CanUint() || reflect.Zero(t).CanFloat()
	}
	switch {
	case isBool(from) && !isBool(to) && to.Kind() != reflect.Interface:
		return nil, fmt.Errorf("%v is not a %v", data, to)
	case isBool(to) && isNumber(from):
		return nil, fmt.Errorf("%v is not a boolean", data)
	}
	return data, nil
}

// rejectBareDuration refuses a non-zero number for a duration: YAML
// `timeout: 30` would otherwise silently mean 30ns.
func rejectBareDuration(from, to reflect.Type, data any) (any, error) {
	if to != durationType || data == nil || from.Kind() == reflect.String || reflect.ValueOf(data).IsZero() {
		return data, nil
	}
	return nil, errors.New(`a duration needs a unit, such as "30s"`)
}

// rejectInexactInt refuses a number an integer key cannot hold exactly:
// mapstructure truncates 2.5 to 2 and wraps large values.
func rejectInexactInt(from, to reflect.Type, data any) (any, error) {
	v := reflect.ValueOf(data)
	if !reflect.Zero(to).CanInt() {
		return data, nil
	}
	switch {
	case v.CanFloat():
		f := v.Float()
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 || reflect.Zero(to).OverflowInt(int64(f)) {
			return nil, fmt.Errorf("%v is not a whole number in range", f)
		}
	case v.CanUint():
		if u := v.Uint(); u > math.MaxInt64 || reflect.Zero(to).OverflowInt(int64(u)) {
			return nil, fmt.Errorf("%v is out of range", u)
		}
	}
	return data, nil
}

// trimSpaces trims the items of a list of strings, so that
// "a:9092, b:9092" is two brokers.
func trimSpaces(from, to reflect.Type, data any) (any, error) {
	list, ok := data.([]string)
	if !ok || to != reflect.TypeFor[[]string]() {
		return data, nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.TrimSpace(s)
	}
	return out, nil
}

// yamlBytes is a koanf.Provider of YAML held in memory.
type yamlBytes []byte

func (b yamlBytes) ReadBytes() ([]byte, error) { return b, nil }

func (b yamlBytes) Read() (map[string]any, error) {
	return nil, errors.New("yamlBytes provides bytes only")
}

// rootTypeName is how mapstructure may name the top level of a decode.
var rootTypeName = reflect.TypeOf(Config{}).String()
