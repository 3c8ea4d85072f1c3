// A process's end and its exec (docs/capture.md "A process ends, a pid
// returns"): a thread's context entry goes with the thread (threads), and
// the maps keyed by a process's tgid (go_procs, tls_procs, serving) lose
// its entry, so that a later process given the same pid (or the program it
// execs) is not taken for it, and user space hears of it (DIR_PROC) in the
// ring's order, after the process's last socket event: it forgets what it
// cached of the process (its name, command line, container; whether it runs
// Go) before the pid's next first event.
#pragma once
#include "handoff.h"
#include "maps/goprocs.h"
#include "maps/tlsprocs.h"
#include "maps/active.h"
#include "maps/pyrunning.h"
#include "maps/nodeturns.h"

#define DIR_PROC 7   // event: a process ended or exec'd (len: PROC_*)
#define PROC_EXIT 0  // its last thread exited
#define PROC_EXEC 1  // it runs another program from now on

// EXEC_NAME: bytes of the program file's name an exec's event carries,
// its NUL included; EXEC_ARGS: bytes of the new program's arguments (user
// space redacts the command line and keeps 256 bytes of it).
#define EXEC_NAME 64
#define EXEC_ARGS 512

// note_exec tells user space of thread's exec (DIR_PROC, PROC_EXEC) with
// what names the new program, read here and not from /proc by user space,
// since a short-lived client (a curl in a script) is often gone by then: the
// thread's name (comm), then in data (cap bytes) the program file's name
// (the executable's own, symbolic links resolved, as /proc/<pid>/exe
// names it: python3.11 for a python3 started through its link), a NUL, and
// its arguments (the kernel's copy of argv on the new stack, NUL-separated,
// read before the program runs and can rewrite them), and its cgroup v2 id
// (sock_id), which tells its container, and where its arguments start in
// its memory (syscall_trace_id: mm->arg_start, which /proc/<pid>/stat shows
// too), which tells this exec's program from a later one's of the same
// name (collector/proc: Exec).
static __always_inline void note_exec(__u64 thread, struct task_struct *task)
{
	struct event *e = bpf_ringbuf_reserve(&events, EVENT_HDR_SIZE + EXEC_NAME + EXEC_ARGS, 0);
	if (!e) {
		count(STAT_DROP_RINGBUF);
		return;
	}
	// The header is built zeroed on the stack: reserved ring memory is not.
	__u64 buf[(EVENT_HDR_SIZE + 7) / 8] = {};
	struct event *h = (struct event *)buf;
	struct mm_struct *mm = task->mm;
	note_header(h, DIR_PROC, PROC_EXEC, thread, bpf_get_current_cgroup_id(), mm->arg_start, task);
	long k = bpf_probe_read_kernel_str(e->data, EXEC_NAME, mm->exe_file->f_path.dentry->d_name.name);
	__u32 o = 1;
	if (k > 0 && k <= EXEC_NAME)
		o = k; // the name and its NUL
	else
		e->data[0] = 0; // no name
	__u64 start = mm->arg_start, end = mm->arg_end;
	__u32 n = 0;
	if (end > start)
		n = end - start > EXEC_ARGS ? EXEC_ARGS : end - start;
	if (n && bpf_probe_read_user(e->data + o, n, (void *)start))
		n = 0;
	h->cap = o + n;
	__builtin_memcpy(e, h, EVENT_HDR_SIZE);
	bpf_ringbuf_submit(e, rb_flags(0));
}

// proc_forget drops the tgid-keyed entries of task's process and tells user
// space (kind PROC_*) when the process is traced, with the thread's name,
// and at an exec what names the new program (note_exec). No generation
// moves: a thread caches its process's entries in its own storage
// (maps/active.h), which ends with the thread, and an exec's thread loses
// its storage below.
static __always_inline void proc_forget(struct task_struct *task, __u8 kind)
{
	__u32 tgid = task->tgid;
	bpf_map_delete_elem(&go_procs, &tgid);
	bpf_map_delete_elem(&tls_procs, &tgid);
	bpf_map_delete_elem(&serving, &tgid);
	__u64 thread = (__u64)tgid << 32 | (__u32)task->pid;
	if (!task_traced(thread))
		return;
	if (kind == PROC_EXEC)
		note_exec(thread, task);
	else
		note_named(DIR_PROC, kind, thread, 0, 0, task);
}

// thread_forget drops what the thread tgid:tid held (maps/threads.h: its
// open server requests, work handed to it): Linux hands an ended thread's
// id to a later thread, within seconds where pid_max is 32,768, and that
// thread's calls would be taken for the ended one's requests.
static __always_inline void thread_forget(__u32 tgid, __u32 tid)
{
	__u64 key = (__u64)tgid << 32 | tid;
	bpf_map_delete_elem(&threads, &key);
}

// proc_exit runs at each thread's exit; the process ends with its last one
// (signal->live, decremented before the tracepoint, is 0).
static __always_inline int proc_exit(struct task_struct *task)
{
	thread_forget(task->tgid, task->pid);
	if (task->signal->live.counter != 0)
		return 0;
	proc_forget(task, PROC_EXIT);
	return 0;
}

// proc_exec runs once the new program replaced the old one (the exec's
// other threads are gone): the thread's storages, whose cached marks,
// verdict copies and runtime state (an asyncio loop's running task, a
// Node.js turn) were the old program's, go too, and so do its context
// entries, under its id before the exec (old_tid: a thread other than the
// leader takes the leader's id) and after.
static __always_inline int proc_exec(struct task_struct *task, __u32 old_tid)
{
	thread_forget(task->tgid, old_tid);
	thread_forget(task->tgid, task->pid);
	bpf_task_storage_delete(&active, task);
	bpf_task_storage_delete(&py_running, task);
	bpf_task_storage_delete(&node_turns, task);
	proc_forget(task, PROC_EXEC);
	return 0;
}
