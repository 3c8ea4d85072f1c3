// Package tasks decides which request the tasks of an event loop worked
// for (docs/assembly.md "Tasks").
//
// CPython's asyncio runs many requests on one thread, each in tasks: the
// thread's request contexts say nothing (it reads every request), but the
// tasks do. The BPF programs (bpf/socket/asyncio.h) report each task's life
// — created (and by which task), freed — and each server request whose
// response a task began: that task answered it. A Tree turns those facts
// into an owner for a task's calls:
//
//   - a task that answered requests worked, at a time t, for the one of them
//     that was open at t (read, its response not yet begun), if exactly one
//     was; at any other time for none;
//   - a task that answered none worked for what the task that created it
//     worked for when it created it (a task created by a request's task —
//     asyncio.gather, create_task, ensure_future — belongs to that request);
//   - a task created outside any task (by a callback) that answered nothing
//     worked for none.
//
// A task's answers are complete only once it is gone, so an owner is known
// only when every task consulted has ended: until then Owner says so and
// the caller keeps the call.
package tasks
