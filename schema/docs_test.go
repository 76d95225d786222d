package schema

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestDocsGolden pins the data dictionary (Markdown and HTML) and the JSON
// Schemas of testdata/tables.yaml; refresh with -update.
func TestDocsGolden(t *testing.T) {
	s := testSchema(t)
	dict := Dictionary(s, DefaultEnvelope(), Redshift)
	var md, html, js bytes.Buffer
	if err := WriteMarkdown(&md, dict, "Tracking events"); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, dict, "Tracking events"); err != nil {
		t.Fatal(err)
	}
	schemas := JSONSchemas(s, DefaultEnvelope())
	for _, ev := range s.EventTypes() {
		js.WriteString("// " + ev + "\n")
		js.Write(schemas[ev])
	}
	for name, got := range map[string][]byte{"dictionary.md": md.Bytes(), "dictionary.html": html.Bytes(), "jsonschema.txt": js.Bytes()} {
		golden := filepath.Join("testdata", "docs", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs from its golden file (go test ./schema -update)", name)
		}
	}
	if !strings.Contains(html.String(), "<code>meta.ua</code>") || strings.Contains(html.String(), "`") {
		t.Errorf("HTML does not render source paths as code")
	}
}

// wholeEventReasons are dead-letter reasons about the event as a whole,
// which a JSON Schema of its fields does not express (README: the schema
// covers fields; size, nesting, array lengths, UTF-8 and NUL are checked on
// the whole message).
var wholeEventReasons = map[string]bool{
	ReasonBadJSON: true, ReasonNotObject: true, ReasonTooDeep: true, ReasonArrayTooLong: true,
	ReasonInvalidUTF8: true, ReasonNulByte: true, ReasonKeyCollision: true, ReasonTooLarge: true,
	ReasonUnknownEventType: true,
}

// TestJSONSchemaAgreesWithFlatten validates every event of the flatten
// golden test against its event type's JSON Schema: an event wharf takes
// must pass, one it dead-letters for a field (type, range, time, id,
// expand) must fail, so an emitter that validates first is not surprised.
func TestJSONSchemaAgreesWithFlatten(t *testing.T) {
	s := testSchema(t)
	env := DefaultEnvelope()
	schemas := JSONSchemas(s, env)
	compiled := map[string]*jsonschema.Schema{}
	for ev, b := range schemas {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		url := "mem://" + ev + ".json"
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		if compiled[ev], err = c.Compile(url); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	d := NewDecoder(s, env)
	in, err := os.ReadFile("testdata/flatten/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		name, body, _ := strings.Cut(line, "\t")
		if strings.Contains(body, "RAW") || strings.Contains(body, `"Type":"Notification"`) || strings.Contains(body, `"Type": "Notification"`) {
			continue
		}
		ev, err := d.Decode([]byte(body), "sqs-msg-1", received)
		if err == nil {
			_, err = d.Flatten(ev, nil)
		}
		// Numbers nested in a json value or in _extras must fit a double:
		// not expressed in the schema (see JSONSchemas).
		jsonNumber := err != nil && strings.Contains(err.Error(), "in a JSON value does not fit")
		if wholeEventReasons[Reason(err)] || jsonNumber || ev == nil || compiled[ev.Type] == nil {
			continue
		}
		inst, jerr := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if jerr != nil {
			continue
		}
		verr := compiled[ev.Type].Validate(inst)
		checked++
		switch {
		case err == nil && verr != nil:
			t.Errorf("%s: wharf takes it, the JSON Schema refuses it: %v", name, verr)
		case err != nil && verr == nil:
			var ie *InvalidError
			errors.As(err, &ie)
			t.Errorf("%s: wharf dead-letters it (%v), the JSON Schema accepts it", name, err)
		}
	}
	if checked < 20 {
		t.Errorf("only %d events checked", checked)
	}
}
