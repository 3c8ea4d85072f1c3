// Package cpython finds, in CPython's _queue extension module (a shared
// object on the traced host, stripped or not), where the C functions behind
// queue.SimpleQueue's put and get begin, so the collector can attach uprobes
// to them (bpf/socket/pyqueue.h; docs/assembly.md "Work queues").
//
// CPython's thread pool (concurrent.futures.ThreadPoolExecutor) hands every
// task to its workers through a SimpleQueue: the object put by the thread
// that submits and the object a worker gets are the same, which says exactly
// which worker works for which request.
//
// The functions are static (a stripped module has no symbol for them), but
// the module's method table (an array of PyMethodDef: name, function, flags,
// doc) names them; in a shared object its pointers are relocations
// (R_X86_64_RELATIVE) whose addends are the addresses. The file is
// untrusted input: a malformed one gives an error, never a panic.
//
// FindAsyncio does the same for the _asyncio module: the C functions behind
// asyncio's tasks (their creation, steps and end), named by a method table
// entry (task_wakeup) and by the Task and TaskStepMethWrapper types' slots
// (bpf/socket/asyncio.h; docs/assembly.md "Tasks").
package cpython
