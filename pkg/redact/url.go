package redact

import "strings"

// part is a part of the input to replace, [start, end), by text.
type part struct {
	start, end int
	text       string
}

// edits collects the parts to replace, in any order. The first eight stay
// in the value itself (on the stack of the caller): the common case
// allocates nothing.
type edits struct {
	arr  [8]part
	n    int
	more []part // all of them, once there are more than eight
}

func (e *edits) add(start, end int, text string) {
	p := part{start, end, text}
	if e.more == nil && e.n < len(e.arr) {
		e.arr[e.n] = p
		e.n++
		return
	}
	if e.more == nil {
		e.more = append(make([]part, 0, 2*len(e.arr)), e.arr[:e.n]...)
	}
	e.more = append(e.more, p)
}

// apply returns s with the parts replaced; parts that overlap or touch become one,
// replaced by Marker. s itself when nothing changes.
func (e *edits) apply(s string) string {
	l := e.arr[:e.n]
	if e.more != nil {
		l = e.more
	}
	if len(l) == 0 {
		return s
	}
	// Insertion sort by start: the parts come nearly sorted.
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].start < l[j-1].start; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
	n := 1
	for _, p := range l[1:] {
		last := &l[n-1]
		if p.start <= last.end { // overlapping or adjacent parts become one
			if p.end > last.end {
				last.end, last.text = p.end, Marker
			}
			continue
		}
		l[n] = p
		n++
	}
	l = l[:n]
	same := true
	for _, p := range l {
		same = same && s[p.start:p.end] == p.text
	}
	if same {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*len(Marker))
	pos := 0
	for _, p := range l {
		b.WriteString(s[pos:p.start])
		b.WriteString(p.text)
		pos = p.end
	}
	b.WriteString(s[pos:])
	return b.String()
}

// URL returns s, a request target (`/path;p=v?query#fragment`) or an
// absolute URL, with the userinfo of every URL in it and the values of
// parameters replaced by Marker: the query's and the fragment's items
// (separated by '&', ';' or a further '?') and the path's `;name=value`
// parameters, of sensitive names (mode Keys; Sensitive) or all of them
// (mode All; an item without '=' counts as a value), none in mode None.
// Userinfo `user:pass@` becomes `REDACTED:REDACTED@`, as OpenTelemetry
// asks. It returns s itself when nothing is replaced.
func (r *Redactor) URL(s string) string {
	if indexOf(s, &special) < 0 {
		return s // the common path: nothing that can hold a parameter or userinfo
	}
	var e edits
	scheme := strings.Index(s, "://")
	if scheme >= 0 {
		userinfo(&e, s, scheme)
	}
	if r.mode != None {
		r.params(&e, s, authorityEnd(s, scheme))
	}
	return e.apply(s)
}

// Host returns an authority (an HTTP Host header, HTTP/2 :authority) with
// its userinfo replaced.
func Host(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	var e edits
	addUserinfo(&e, s, 0, at)
	return e.apply(s)
}

// userinfo finds the userinfo of every "scheme://user:pass@host" in s,
// nested ones too ("/login?next=https://u:p@h/").
func userinfo(e *edits, s string, first int) {
	for i := first; i >= 0; {
		start := i + 3
		end := len(s)
		if j := indexOf(s[start:], &authorityStop); j >= 0 {
			end = start + j
		}
		if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
			addUserinfo(e, s, start, start+at)
		}
		// "a://b://u:p@h": the next "://" may begin inside this authority.
		if i = strings.Index(s[start:], "://"); i >= 0 {
			i += start
		}
	}
}

func addUserinfo(e *edits, s string, start, at int) {
	if at == start {
		return
	}
	text := Marker
	if strings.IndexByte(s[start:at], ':') >= 0 {
		text = Marker + ":" + Marker
	}
	e.add(start, at, text)
}

// authorityEnd is where the path of s begins: after "scheme://authority"
// when s starts with one (i: the first "://" in s, or -1), else 0.
func authorityEnd(s string, i int) int {
	if i <= 0 || strings.IndexAny(s[:i], "/?#;@") >= 0 {
		return 0
	}
	end := i + 3
	for end < len(s) && s[end] != '/' && s[end] != '?' && s[end] != '#' {
		end++
	}
	return end
}

// params finds the parameter values to replace: the path's `;` parameters
// ("/a;jsessionid=1/b;v=2"), then the query's and the fragment's items.
func (r *Redactor) params(e *edits, s string, from int) {
	q := len(s)
	if i := indexOf(s[from:], &queryStart); i >= 0 {
		q = from + i
	}
	for i := from; i < q; i++ {
		semi := strings.IndexByte(s[i:q], ';')
		if semi < 0 {
			break
		}
		i += semi
		end := i + 1
		for end < q && s[end] != '/' && s[end] != ';' {
			end++
		}
		r.item(e, s, i+1, end)
		i = end - 1
	}
	for start := q + 1; start <= len(s); {
		end := start
		if i := indexOf(s[start:], &itemSep); i >= 0 {
			end = start + i
		} else {
			end = len(s)
		}
		r.item(e, s, start, end)
		start = end + 1
	}
}

// byteSet is a set of bytes, for indexOf.
type byteSet [256]bool

func setOf(chars string) (s byteSet) {
	for i := range len(chars) {
		s[chars[i]] = true
	}
	return s
}

var (
	special    = setOf("?#;@") // what a resource needs for anything to redact
	queryStart = setOf("?#")
	itemSep    = setOf("&;?#")
	// authorityStop ends a URL's authority ("/?#"), or the URL (a back
	// slash, white space).
	authorityStop = setOf("/?#\\ \t\r\n")
)

// indexOf is strings.IndexAny for a set built once.
func indexOf(s string, set *byteSet) int {
	for i := range len(s) {
		if set[s[i]] {
			return i
		}
	}
	return -1
}

// item adds the value of the parameter s[start:end] when it is to go.
func (r *Redactor) item(e *edits, s string, start, end int) {
	if start >= end {
		return
	}
	eq := strings.IndexByte(s[start:end], '=')
	switch {
	case eq < 0:
		if r.mode == All {
			e.add(start, end, Marker)
		}
	case start+eq+1 == end:
		// An empty value hides nothing.
	case r.mode == All || r.Sensitive(s[start:start+eq]):
		e.add(start+eq+1, end, Marker)
	}
}
