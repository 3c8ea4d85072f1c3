package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNoData marks a data directory that holds something other than
// Zerotrace data.
var ErrNoData = errors.New("holds no Zerotrace data (no " + ManifestName + " in it or in a subdirectory)")

// errNotDir marks a data directory that is a file.
var errNotDir = errors.New("not a directory")

// DirError is a data directory that cannot serve: what is wrong with it
// and what to do about it. Readers (the plugin, the CLI) refuse such a
// directory instead of answering as if it were empty.
type DirError struct {
	Dir string
	Err error // fs.ErrNotExist, fs.ErrPermission (wrapped), errNotDir, ErrNoData, …
}

func (e *DirError) Error() string {
	msg := fmt.Sprintf("data directory %s: %v", e.Dir, e.Err)
	if h := e.Hint(); h != "" {
		msg += "; " + h
	}
	return msg
}

func (e *DirError) Unwrap() error { return e.Err }

// Hint says what to do about the error.
func (e *DirError) Hint() string {
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		return "check the path: the collector's --data-dir or one of its node directories"
	case errors.Is(e.Err, fs.ErrPermission):
		return "read it as root or as a member of the collector's --data-group"
	case errors.Is(e.Err, errNotDir), errors.Is(e.Err, ErrNoData):
		return "give the collector's --data-dir or one of its node directories"
	}
	return ""
}

// CheckDataDir says whether dir can serve as a data directory: it must be a
// readable directory that is empty (no spans yet) or holds a node's
// MANIFEST.json or node directories with one. The error is a *DirError.
// Node manifests are read (and a damaged one named) by the Reader.
func CheckDataDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return &DirError{dir, unwrapPath(err)}
	}
	if !st.IsDir() {
		return &DirError{dir, errNotDir}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return &DirError{dir, unwrapPath(err)}
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		return nil
	}
	// A node directory the reader may not enter would be skipped as if it
	// held nothing: when no node directory is readable, say why.
	var denied error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		_, err := os.Stat(filepath.Join(dir, e.Name(), ManifestName))
		if err == nil {
			return nil
		}
		if denied == nil && errors.Is(err, fs.ErrPermission) {
			denied = fmt.Errorf("node directory %s: %w", e.Name(), fs.ErrPermission)
		}
	}
	if denied != nil {
		return &DirError{dir, denied}
	}
	return &DirError{dir, ErrNoData}
}

// unwrapPath drops the *fs.PathError around err: DirError names the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LookupGroup resolves a group name or numeric id as the writer does for
// WriterOptions.Group.
func LookupGroup(g string) (int, error) { return lookupGroup(g) }
