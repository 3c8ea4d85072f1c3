// asyncio tasks (docs/assembly.md "Tasks"): CPython's event loop runs many
// requests on one thread, each in tasks; uprobes on the _asyncio module's C
// tasks (found by the collector in the module's tables, collector/cpython)
// follow which task runs on a thread, which task created which, and when a
// task is freed. A call made while a task runs carries a token of its own
// and names its task (VERDICT_TASK); a task that begins a server request's
// response answers that request (TASK_ANSWER). User space (collector/tasks)
// decides which request a task worked for once it is gone: the one it
// answered, or the one the task that created it worked for at that time.
#pragma once
#include "ids.h"
#include "handoff.h"
#include "maps/pytasks.h"
#include "maps/pyrunning.h"
#include "maps/active.h"

#define DIR_TASK 6 // event: a task's life (len: TASK_*, sock_id: the task's id)
#define TASK_NEW 0    // created (syscall_trace_id: the creating task's id, 0: none)
#define TASK_END 1    // freed
#define TASK_ANSWER 2 // began a server request's response (syscall_trace_id: its context)
#define VERDICT_TASK 4 // a call made by a task (owner: the task's id)
#define SOCK_TASK_CALL 1 // sock_state.task: its call was a task's (ctx its token, handed the task's id)

// task_event reports kind about task id (arg: see TASK_*).
static __always_inline void task_event(__u8 kind, __u64 id, __u64 arg)
{
	note(DIR_TASK, kind, bpf_get_current_pid_tgid(), id, arg);
}

// running returns the current thread's task state, NULL when it never ran
// a task's step.
static __always_inline struct py_running *running(void)
{
	return bpf_task_storage_get(&py_running, bpf_get_current_task_btf(), 0, 0);
}

// task_id returns the id of task object addr of the current process, 0
// when it is not known (created before its module's uprobes were attached).
static __always_inline __u64 task_id(__u64 addr)
{
	struct py_task k = {.task = addr, .tgid = bpf_get_current_pid_tgid() >> 32};
	__u64 *id = bpf_map_lookup_elem(&py_tasks, &k);
	return id ? *id : 0;
}

// py_task_new: Task.__init__(self) (DI): the task gets a fresh id; its
// creator is the task whose step runs on the thread, if any.
static __always_inline int py_task_new(struct pt_regs *ctx)
{
	__u64 thread = bpf_get_current_pid_tgid();
	if (!task_traced(thread))
		return 0;
	__u64 id = fresh_id();
	if (!id)
		return 0;
	struct py_task k = {.task = ctx->di, .tgid = thread >> 32};
	bpf_map_update_elem(&py_tasks, &k, &id, BPF_ANY);
	struct py_running *r = running();
	task_event(TASK_NEW, id, r && r->depth ? r->task : 0);
	return 0;
}

// py_task_free: the Task type's tp_dealloc(self) (DI).
static __always_inline int py_task_free(struct pt_regs *ctx)
{
	struct py_task k = {.task = ctx->di, .tgid = bpf_get_current_pid_tgid() >> 32};
	__u64 *id = bpf_map_lookup_elem(&py_tasks, &k);
	if (!id)
		return 0;
	task_event(TASK_END, *id, 0);
	bpf_map_delete_elem(&py_tasks, &k);
	return 0;
}

// step_enter: the loop runs a step of task object addr on this thread. A
// step inside another (a loop run inside a task) runs no known task.
static __always_inline int step_enter(__u64 addr)
{
	if (!task_traced(bpf_get_current_pid_tgid()))
		return 0;
	struct py_running *r = running();
	if (!r && rt_mark(RT_PY))
		r = bpf_task_storage_get(&py_running, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!r)
		return 0;
	r->loop = 1;
	r->task = r->depth++ == 0 ? task_id(addr) : 0;
	return 0;
}

// step_exit: the step that entered last returned.
static __always_inline int step_exit(void)
{
	struct py_running *r = running();
	if (!r || r->depth == 0)
		return 0;
	if (--r->depth == 0)
		r->task = 0;
	return 0;
}

// py_task_step: TaskStepMethWrapper's tp_call(self) (DI): its task at
// PY_STEP_TASK.
#define PY_STEP_TASK 16
static __always_inline int py_task_step(struct pt_regs *ctx)
{
	__u64 addr = 0;
	if (bpf_probe_read_user(&addr, sizeof(addr), (void *)(ctx->di + PY_STEP_TASK)))
		return 0;
	return step_enter(addr);
}

// task_answer: the current thread begins the response of server request
// ctx: the task whose step runs answers it.
static __always_inline void task_answer(__u64 ctx)
{
	struct py_running *r = running();
	if (r && r->depth && r->task && ctx)
		task_event(TASK_ANSWER, r->task, ctx);
}

// task_call returns the context of a client message moved by an event
// loop's thread (r: its state) on socket s (sk), next: a request after a
// response on the socket. A task's call gets a token of its own (HANDOFF_BIT
// set: user space keeps the call until its task is decided), announced with
// its task (VERDICT_TASK); the rest of the call, and its response (read by
// the loop's callbacks, outside any task), carry the same token. Any other
// message of the loop's thread carries nothing: a callback serves no one
// request.
static __always_inline __u64 task_call(struct py_running *r, struct sock_state *s, __u8 dir, __u8 next)
{
	if (dir == DIR_INGRESS)
		return s->task == SOCK_TASK_CALL ? s->ctx : 0;
	if (!r->depth || !r->task) {
		s->task = 0;
		return 0;
	}
	if (s->task == SOCK_TASK_CALL && s->handed == r->task && !next && s->ctx)
		return s->ctx; // the rest of the request
	__u64 token = fresh_id();
	if (!token)
		return 0;
	verdict(bpf_get_current_pid_tgid(), r->task, token, VERDICT_TASK);
	s->ctx = token | HANDOFF_BIT;
	s->handed = r->task;
	s->task = SOCK_TASK_CALL;
	return s->ctx;
}
