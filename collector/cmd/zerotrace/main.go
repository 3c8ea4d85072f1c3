// Command zerotrace is the one binary of Zerotrace: the node collector
// (collect), the store tools (store stats|dump), trace assembly in the
// terminal (trace, search) and the benchmarks (bench store|capture|packets|query).
//
// Each subcommand lives in its own file and registers itself in init with
// register; main only dispatches.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run gets the arguments after the subcommand
// name(s) and returns the process exit code.
type command struct {
	name    string // e.g. "collect", "store stats", "bench store"
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("zerotrace: duplicate command " + c.name)
	}
	commands[c.name] = c
}

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	// Longest match first: "bench store" before "bench".
	for n := min(2, len(args)); n >= 1; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			return c.run(args[n:])
		}
	}
	usage()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return 0
	}
	return 2
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: zerotrace <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-16s %s\n", n, commands[n].summary)
	}
}
