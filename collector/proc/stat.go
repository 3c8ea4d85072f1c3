//go:build linux

package proc

import (
	"bytes"
	"errors"
	"strconv"
)

// errStat: bytes that are not a /proc/<pid>/stat line with an arg_start.
var errStat = errors.New("proc: stat: no arg_start field")

// statArgStartField is arg_start's place among the fields that follow the
// command's closing parenthesis (field 48 of proc(5); the state, field 3,
// is the first there).
const statArgStartField = 48 - 3

// StatArgStart reads arg_start (proc(5), field 48: where the program's
// arguments start in its memory; 0 when the reader may not trace the
// process) from the contents of /proc/<pid>/stat. The command name in field
// 2 is the process's own choice and may hold spaces and parentheses: the
// fields are counted from the last ')'. It does not allocate.
func StatArgStart(b []byte) (uint64, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, errStat
	}
	// Each field follows one space (the kernel's format); a line break
	// ends the line.
	b = b[end+1:]
	for field := 0; ; field++ {
		if len(b) == 0 || b[0] != ' ' {
			return 0, errStat
		}
		b = b[1:]
		n := bytes.IndexByte(b, ' ')
		if n < 0 {
			n = len(b)
		}
		if field == statArgStartField {
			v, err := strconv.ParseUint(string(bytes.TrimSuffix(b[:n], []byte{'\n'})), 10, 64)
			if err != nil {
				return 0, errStat
			}
			return v, nil
		}
		if bytes.IndexByte(b[:n], '\n') >= 0 {
			return 0, errStat
		}
		b = b[n:]
	}
}
