package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// RawConfig is a Hugging Face config.json: its top-level keys with their JSON
// values, as written in the file. This package reads the file; the model
// families (package model and its family packages) know which keys mean what
// and read them through Fields, so that errors name the key as the file spells it.
type RawConfig map[string]json.RawMessage

// ReadConfig reads dir/config.json as a JSON object.
func ReadConfig(dir string) (RawConfig, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	r, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return r, nil
}

// ParseConfig parses config.json bytes, which must hold a JSON object.
func ParseConfig(b []byte) (RawConfig, error) {
	var raw RawConfig
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("expected a JSON object: %w", err)
	}
	if raw == nil {
		return nil, fmt.Errorf("expected a JSON object, got null")
	}
	return raw, nil
}

// ModelType returns the model_type field ("" when absent).
func (r RawConfig) ModelType() (string, error) {
	var s string
	f := r.Fields()
	f.String("model_type", &s)
	return s, f.Err()
}

// Fields reads typed values of a RawConfig (or of a nested object): each
// getter leaves its destination unchanged when the key is absent or null,
// and the first wrong-typed value becomes Err, naming the key.
type Fields struct {
	raw    RawConfig
	prefix string
	err    error
}

// Fields returns a reader of r's keys.
func (r RawConfig) Fields() *Fields { return &Fields{raw: r} }

// Err is the first error met.
func (f *Fields) Err() error { return f.err }

// Has reports whether key is present and not null.
func (f *Fields) Has(key string) bool {
	v, ok := f.raw[key]
	return ok && string(v) != "null"
}

// Sub returns a reader of the object under key (empty when absent or null).
func (f *Fields) Sub(key string) *Fields {
	sub := &Fields{prefix: f.prefix + key + "."}
	if f.err != nil || !f.Has(key) {
		return sub
	}
	if err := json.Unmarshal(f.raw[key], &sub.raw); err != nil {
		f.err = fmt.Errorf("field %s%s: expected an object: %w", f.prefix, key, err)
	}
	return sub
}

// Join keeps sub's error as f's first error.
func (f *Fields) Join(sub *Fields) {
	if f.err == nil {
		f.err = sub.err
	}
}

func (f *Fields) get(key string, dst any, what string) bool {
	if f.err != nil || !f.Has(key) {
		return false
	}
	if err := json.Unmarshal(f.raw[key], dst); err != nil {
		f.err = fmt.Errorf("field %s%s: expected %s, got %s", f.prefix, key, what, f.raw[key])
		return false
	}
	return true
}

// Int reads an integer (a JSON number without fraction).
func (f *Fields) Int(key string, dst *int) {
	var v float64
	if !f.get(key, &v, "an integer") {
		return
	}
	if v != float64(int(v)) {
		f.err = fmt.Errorf("field %s%s: expected an integer, got %s", f.prefix, key, f.raw[key])
		return
	}
	*dst = int(v)
}

// Float reads a number.
func (f *Fields) Float(key string, dst *float64) { f.get(key, dst, "a number") }

// String reads a string.
func (f *Fields) String(key string, dst *string) { f.get(key, dst, "a string") }

// Bool reads true or false.
func (f *Fields) Bool(key string, dst *bool) { f.get(key, dst, "true or false") }

// IntOrList reads an integer or a list of integers (such as eos_token_id).
func (f *Fields) IntOrList(key string, dst *[]int) {
	if f.err != nil || !f.Has(key) {
		return
	}
	var id int
	var ids []int
	if json.Unmarshal(f.raw[key], &id) == nil {
		*dst = []int{id}
	} else if json.Unmarshal(f.raw[key], &ids) == nil {
		*dst = ids
	} else {
		f.err = fmt.Errorf("field %s%s: expected an integer or a list of integers, got %s", f.prefix, key, f.raw[key])
	}
}

// Strings reads a list of strings.
func (f *Fields) Strings(key string, dst *[]string) { f.get(key, dst, "a list of strings") }

// Floats reads a list of numbers.
func (f *Fields) Floats(key string, dst *[]float64) { f.get(key, dst, "a list of numbers") }
