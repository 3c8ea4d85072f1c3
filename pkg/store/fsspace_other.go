//go:build !linux && !darwin && !windows

package store

func statFS(string) (FSSpace, bool, error) { return FSSpace{}, false, nil }

func writable(string) error { return nil }
