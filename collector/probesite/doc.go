// Package probesite finds where a function's entry and return uprobes can
// go so that the kernel runs no instruction of the function by
// single-stepping it (x86-64).
//
// A uprobe replaces an instruction with a breakpoint. When the breakpoint
// traps, the kernel runs the program, then has to execute the instruction
// it replaced: it emulates a few (call, jmp, jcc, nop and push) and
// single-steps every other one out of line, which costs a second trap (a
// debug exception). A return probe (uretprobe) must sit on the function's
// first instruction, and a C function's first instruction is seldom one of
// those: Debian's libssl begins SSL_read and SSL_write with `sub $0x18,%rsp`.
// On this project's test machine the single step was half of nginx's and
// wrk's CPU under HTTPS tracing (docs/tls.md "Probes that are not single-stepped").
//
// Find looks, in a function's code, for a call on its way in before which
// no instruction has touched the argument registers the entry program
// reads (the entry site), and for a branch that every way out of the
// function passes after that call, with the return value in RAX from there
// to the ret (the return site). Both are instructions the kernel emulates.
// Where the code is anything but that — an instruction not on the short
// lists below, a jump into the way in, an indirect jump, a call after the
// return site that returns — Find says why, and the caller keeps the
// entry uprobe and uretprobe.
package probesite
