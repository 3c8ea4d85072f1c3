package otlp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attributes an SDK sent are stored as one JSON object per span (and per
// resource): keys sorted, strings as strings, integers as integer literals,
// doubles with a fraction or exponent, booleans, arrays and maps nested,
// bytes as {"bytes":"<base64>"}. putJSON reads that form back.

// attrsJSON encodes m, keeping at most maxAttrs entries (in key order) and
// cutting strings to maxValue bytes; it reports how many were dropped or cut.
func attrsJSON(m pcommon.Map, maxAttrs, maxValue int) (string, int) {
	if m.Len() == 0 {
		return "", 0
	}
	keys := make([]string, 0, m.Len())
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	limited := 0
	if len(keys) > maxAttrs {
		limited += len(keys) - maxAttrs
		keys = keys[:maxAttrs]
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, k, maxValue, &limited)
		b.WriteByte(':')
		v, _ := m.Get(k)
		writeValue(&b, v, maxValue, &limited, 0)
	}
	b.WriteByte('}')
	return b.String(), limited
}

// maxDepth bounds nested arrays and maps (deeper values become null).
const maxDepth = 8

func writeString(b *bytes.Buffer, s string, maxValue int, limited *int) {
	if len(s) > maxValue {
		s = s[:maxValue]
		*limited++
	}
	q, _ := json.Marshal(s) // invalid UTF-8 becomes U+FFFD
	b.Write(q)
}

func writeValue(b *bytes.Buffer, v pcommon.Value, maxValue int, limited *int, depth int) {
	if depth >= maxDepth {
		b.WriteString("null")
		*limited++
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		writeString(b, v.Str(), maxValue, limited)
	case pcommon.ValueTypeInt:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case pcommon.ValueTypeDouble:
		f := v.Double()
		s := strconv.FormatFloat(f, 'g', -1, 64)
		switch {
		case f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308:
			writeString(b, s, maxValue, limited) // NaN and infinities have no JSON number
			return
		case !bytes.ContainsAny([]byte(s), ".eE"):
			s += ".0"
		}
		b.WriteString(s)
	case pcommon.ValueTypeBool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		if len(raw) > maxValue {
			raw = raw[:maxValue]
			*limited++
		}
		q, _ := json.Marshal(raw)
		b.WriteString(`{"bytes":`)
		b.Write(q)
		b.WriteByte('}')
	case pcommon.ValueTypeSlice:
		b.WriteByte('[')
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, s.At(i), maxValue, limited, depth+1)
		}
		b.WriteByte(']')
	case pcommon.ValueTypeMap:
		// Nested maps are written as {"map":{…}} so that they are told
		// apart from bytes.
		b.WriteString(`{"map":`)
		s, n := attrsJSON(v.Map(), 1<<30, maxValue)
		*limited += n
		if s == "" {
			s = "{}"
		}
		b.WriteString(s)
		b.WriteByte('}')
	default:
		b.WriteString("null")
	}
}

// putJSON puts the attributes of a JSON object written by attrsJSON into m.
func putJSON(m pcommon.Map, s string) error {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var raw map[string]any
	if err := d.Decode(&raw); err != nil {
		return fmt.Errorf("decoding stored attributes: %w", err)
	}
	for k, v := range raw {
		putRaw(m.PutEmpty(k), v)
	}
	return nil
}

func putRaw(dst pcommon.Value, v any) {
	switch x := v.(type) {
	case string:
		dst.SetStr(x)
	case bool:
		dst.SetBool(x)
	case json.Number:
		if n, err := x.Int64(); err == nil && !bytes.ContainsAny([]byte(x), ".eE") {
			dst.SetInt(n)
		} else if f, err := x.Float64(); err == nil {
			dst.SetDouble(f)
		} else {
			dst.SetStr(string(x))
		}
	case []any:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(x))
		for _, e := range x {
			putRaw(s.AppendEmpty(), e)
		}
	case map[string]any:
		if b, ok := x["bytes"].(string); ok && len(x) == 1 {
			var raw []byte
			if err := json.Unmarshal([]byte(strconv.Quote(b)), &raw); err == nil {
				dst.SetEmptyBytes().FromRaw(raw)
				return
			}
		}
		if inner, ok := x["map"].(map[string]any); ok && len(x) == 1 {
			mm := dst.SetEmptyMap()
			for k, e := range inner {
				putRaw(mm.PutEmpty(k), e)
			}
		}
	}
}
