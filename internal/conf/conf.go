// Package conf reads a YAML configuration file into a struct and overrides
// its fields from the environment: PREFIX_SECTION_KEY for section.key, as
// the struct's yaml tags name them. cmd/wharf's Config is read with it.
package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "60s" in YAML and the environment.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 60s or 5m", n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as 128MiB, 64MB, 1048576.
type ByteSize int64

var sizeRE = regexp.MustCompile(`^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		return fmt.Errorf("%q is not a size such as 128MiB", n.Value)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	*b = ByteSize(v * mult)
	return nil
}

var yamlFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// Decode reads YAML data into dst, refusing a key dst has no field for
// ("line N: unknown field K"). Empty data leaves dst as it is.
func Decode(data []byte, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		msg := yamlFieldRE.ReplaceAllString(err.Error(), "line $1: unknown field $2")
		return errors.New(strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

// ApplyEnv overrides each field of the struct dst points to from the
// variable PREFIX_SECTION_KEY that lookup finds, e.g. WHARF_SQS_QUEUE_URL or
// WHARF_DRAIN_TIMEOUT, and records each name in known. A variable set to ""
// clears the field to dflt's (a struct of dst's type): WHARF_MONGO_URI=
// turns raw writes off whatever the file says. An error names the field
// (section.key) and the variable.
func ApplyEnv(dst, dflt any, prefix string, lookup func(string) (string, bool), known map[string]bool) error {
	return applyEnv(reflect.ValueOf(dst).Elem(), reflect.ValueOf(dflt).Elem(), prefix, prefix, lookup, known)
}

func applyEnv(v, dflt reflect.Value, root, prefix string, lookup func(string) (string, bool), known map[string]bool) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || !f.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, dflt.Field(i), root, name, lookup, known); err != nil {
				return err
			}
			continue
		}
		known[name] = true
		val, set := lookup(name)
		switch {
		case !set:
		case val == "":
			fv.Set(dflt.Field(i))
		case fv.Kind() == reflect.String:
			fv.SetString(val)
		default:
			n := yaml.Node{Kind: yaml.ScalarNode, Value: val}
			if err := n.Decode(fv.Addr().Interface()); err != nil {
				field := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, root+"_"), "_", "."))
				return fmt.Errorf("%s (from %s): %v", field, name, err)
			}
		}
	}
	return nil
}
