package main

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// openDirs checks every data directory as the plugin does
// (store.CheckDataDir: missing, not a directory, unreadable, holding no
// Zerotrace data) before it opens a reader over them: a wrong path is an
// error naming it, never an empty answer. Damaged node manifests are
// named by the commands' queries (the reader's errors).
func openDirs(dirs []string) (*store.Reader, error) {
	var errs []error
	for _, d := range dirs {
		if err := store.CheckDataDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return store.OpenReader(dirs...)
}

// checkNodeDir checks the data directory a command ships from (upload) and
// the node's manifest in it, if the collector wrote one yet.
func checkNodeDir(dataDir, node string) error {
	if err := store.CheckDataDir(dataDir); err != nil {
		return err
	}
	r, err := store.OpenReader(filepath.Join(dataDir, node))
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = r.Stats(context.Background())
	return err
}
