package trace

import (
	"context"
	"errors"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// CheckRef reports whether id can name a trace: a trace id (32 or 16
// hex digits, or a derived id), or a span id as span.ParseSpanID reads it.
func CheckRef(id string) error {
	id = strings.TrimSpace(id)
	if _, _, err := ParseID(id); err == nil {
		return nil
	}
	_, err := span.ParseSpanID(id)
	return err
}

// AssembleRef assembles the trace that a pasted id names: a trace id (32 hex
// digits, a derived id, or 16 hex digits of a 64-bit trace id), else a span
// id — 16 hex digits as every Zerotrace surface prints them (tried as a
// trace id first, then as a span id), 0x-prefixed hex, or the decimal ids
// older versions printed. The trace command and the trace query share it.
func AssembleRef(ctx context.Context, src Source, cfg Config, id string) (*Trace, error) {
	id = strings.TrimSpace(id)
	if _, _, err := ParseID(id); err == nil {
		t, err := Assemble(ctx, src, cfg, id, 0, 0)
		if !errors.Is(err, ErrNotFound) || !span.IsHexSpanID(id) {
			return t, err
		}
		// 16 hex digits that are no trace id: a span id.
		sid, _ := span.ParseSpanID(id)
		if t2, err2 := Assemble(ctx, src, cfg, DerivedID(sid), 0, 0); err2 == nil || !errors.Is(err2, ErrNotFound) {
			return t2, err2
		}
		return t, err
	}
	sid, err := span.ParseSpanID(id)
	if err != nil {
		return nil, err
	}
	return Assemble(ctx, src, cfg, DerivedID(sid), 0, 0)
}

// LinkID is the id a search row links to: the application trace id, or
// the derived id of the row's span (the trace query assembles around it).
func LinkID(s *span.Span) string {
	if !s.TraceID.IsZero() {
		return s.TraceID.String()
	}
	return DerivedID(s.SpanID)
}
