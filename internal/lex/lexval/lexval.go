// Package lexval checks XRPC bodies and parameters against the vendored
// official lexicons with indigo's atproto/lexicon validator, so that what
// skydm and devchat send and answer cannot drift from the published schema.
//
// indigo validates records only; a query's or procedure's body is checked
// by presenting its schema object to that validator as the record of a
// synthetic record type (wrapped below), so the rules applied are indigo's.
package lexval

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"

	"github.com/skydm/skydm/lexicons/official"
)

var catalog = sync.OnceValues(func() (*lexicon.BaseCatalog, error) {
	c := lexicon.NewBaseCatalog()
	if err := c.LoadEmbedFS(official.FS); err != nil {
		return nil, fmt.Errorf("lexval: loading the vendored lexicons: %w", err)
	}
	return c, nil
})

// Output checks body, the JSON answer of method nsid, against the
// method's output schema.
func Output(nsid string, body []byte) error { return checkBody(nsid, "output", body) }

// Input checks body, the JSON input of procedure nsid, against its input
// schema.
func Input(nsid string, body []byte) error { return checkBody(nsid, "input", body) }

// Error checks that name is an error method nsid declares.
func Error(nsid, name string) error {
	def, err := method(nsid)
	if err != nil {
		return err
	}
	var errs []lexicon.SchemaError
	switch m := def.(type) {
	case lexicon.SchemaQuery:
		errs = m.Errors
	case lexicon.SchemaProcedure:
		errs = m.Errors
	}
	for _, e := range errs {
		if e.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%s declares no error %q", nsid, name)
}

// Params checks query parameters q of method nsid against its parameters
// schema: types, required ones, limits, and no unknown names.
func Params(nsid string, q url.Values) error {
	def, err := method(nsid)
	if err != nil {
		return err
	}
	var ps *lexicon.SchemaParams
	switch m := def.(type) {
	case lexicon.SchemaQuery:
		ps = m.Parameters
	case lexicon.SchemaProcedure:
		ps = m.Parameters
	}
	if ps == nil {
		ps = &lexicon.SchemaParams{}
	}
	data := map[string]any{}
	for name, vals := range q {
		prop, ok := ps.Properties[name]
		if !ok {
			return fmt.Errorf("%s: unknown parameter %q", nsid, name)
		}
		v, err := paramValue(prop.Inner, vals)
		if err != nil {
			return fmt.Errorf("%s: parameter %s: %w", nsid, name, err)
		}
		data[name] = v
	}
	obj := lexicon.SchemaObject{Type: "object", Properties: ps.Properties, Required: ps.Required}
	return validate(nsid, "params", obj, data)
}

// paramValue turns the strings of one query parameter into the data-model
// value its schema expects (an array's items, an integer, a boolean).
func paramValue(schema any, vals []string) (any, error) {
	if arr, ok := schema.(lexicon.SchemaArray); ok {
		out := make([]any, len(vals))
		for i, v := range vals {
			x, err := paramValue(arr.Items.Inner, []string{v})
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("given %d times", len(vals))
	}
	switch schema.(type) {
	case lexicon.SchemaInteger:
		n, err := strconv.ParseInt(vals[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", vals[0])
		}
		return n, nil
	case lexicon.SchemaBoolean:
		b, err := strconv.ParseBool(vals[0])
		if err != nil || (vals[0] != "true" && vals[0] != "false") {
			return nil, fmt.Errorf("%q is not true or false", vals[0])
		}
		return b, nil
	}
	return vals[0], nil
}

func method(nsid string) (any, error) {
	c, err := catalog()
	if err != nil {
		return nil, err
	}
	s, err := c.Resolve(nsid)
	if err != nil {
		return nil, fmt.Errorf("lexval: %w", err)
	}
	return s.Def, nil
}

func checkBody(nsid, which string, body []byte) error {
	def, err := method(nsid)
	if err != nil {
		return err
	}
	var b *lexicon.SchemaBody
	switch m := def.(type) {
	case lexicon.SchemaQuery:
		if which == "output" {
			b = m.Output
		}
	case lexicon.SchemaProcedure:
		if which == "output" {
			b = m.Output
		} else {
			b = m.Input
		}
	default:
		return fmt.Errorf("lexval: %s is not a query or procedure", nsid)
	}
	if b == nil || b.Schema == nil {
		if len(strings.TrimSpace(string(body))) > 0 && string(body) != "{}" {
			return fmt.Errorf("%s has no %s schema, but a body was given", nsid, which)
		}
		return nil
	}
	data, err := atdata.UnmarshalJSON(body)
	if err != nil {
		return fmt.Errorf("%s %s is not a JSON object in the data model: %w", nsid, which, err)
	}
	// The body's schema is an object, a ref or a union: as the one required
	// property of a wrapping object, indigo checks each the same way.
	obj := lexicon.SchemaObject{Type: "object", Properties: map[string]lexicon.SchemaDef{"body": *b.Schema}, Required: []string{"body"}}
	return validate(nsid, which, obj, map[string]any{"body": data})
}

// validate runs indigo's validator on data against obj, presented as the
// record of a synthetic record type.
func validate(nsid, which string, obj lexicon.SchemaObject, data map[string]any) error {
	c, err := catalog()
	if err != nil {
		return err
	}
	ref := "skydm.lexval." + which + "." + strings.ReplaceAll(nsid, ".", "-")
	cat := wrapped{base: c, ref: ref, def: lexicon.SchemaRecord{Type: "record", Key: "any", Record: obj}}
	d := make(map[string]any, len(data)+1)
	for k, v := range data {
		d[k] = v
	}
	d["$type"] = ref
	if err := lexicon.ValidateRecord(cat, d, ref, 0); err != nil {
		js, _ := json.Marshal(data)
		if len(js) > 400 {
			js = append(js[:400], "…"...)
		}
		return fmt.Errorf("%s %s does not match the lexicon: %w\n%s", nsid, which, err, js)
	}
	return nil
}

// wrapped is the catalog plus one synthetic record type.
type wrapped struct {
	base *lexicon.BaseCatalog
	ref  string
	def  lexicon.SchemaRecord
}

func (w wrapped) Resolve(ref string) (*lexicon.Schema, error) {
	if ref == w.ref || ref == w.ref+"#main" {
		return &lexicon.Schema{ID: w.ref + "#main", Def: w.def}, nil
	}
	return w.base.Resolve(ref)
}
