package cpython

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
)

// Asyncio holds where the C functions behind the tasks of CPython's
// _asyncio module begin (offsets in the file: uprobe addresses), and how a
// step's uprobe finds its task.
type Asyncio struct {
	// Init is the Task type's tp_init (Task.__init__): a task is created,
	// by the code running on the thread; the task in DI.
	Init uint64
	// Dealloc is the Task type's tp_dealloc: a task is freed; the task in DI.
	Dealloc uint64
	// Step is TaskStepMethWrapper's tp_call: the loop runs a task's step
	// (its first, and one after a bare yield); the wrapper in DI, its task
	// StepTask bytes into it.
	Step uint64
	// Wakeup is task_wakeup (a METH_O method the task registers on the
	// future it awaits): the loop runs a task's step after that future is
	// done; the task (the method's self) in DI.
	Wakeup uint64
}

// StepTask is the offset of sw_task in a TaskStepMethWrapper object (after
// PyObject_HEAD: ob_refcnt, ob_type), CPython 3.10 to 3.13.
const StepTask = 16

// Type slot ids (Include/typeslots.h), for types made from a PyType_Spec
// (CPython 3.12 on).
const (
	slotCall    = 50 // Py_tp_call
	slotDealloc = 52 // Py_tp_dealloc
	slotInit    = 60 // Py_tp_init
)

// Offsets in a static PyTypeObject (CPython 3.10 and 3.11; 64-bit, no
// Py_TRACE_REFS) from its tp_name field.
const (
	typeName    = 24  // tp_name
	typeDealloc = 48  // tp_dealloc
	typeCall    = 128 // tp_call
	typeInit    = 296 // tp_init
)

const maxSlots = 64 // entries read of a PyType_Spec's slot array, at most

// FindAsyncio reads the _asyncio module at r (an x86-64 ELF shared object,
// stripped or not) and returns its task functions. The functions are static;
// the module's tables name them: task_wakeup's PyMethodDef, and the Task and
// TaskStepMethWrapper types, static PyTypeObjects up to CPython 3.11 and
// PyType_Specs with slot arrays from 3.12. Each must be found exactly once.
func FindAsyncio(r io.ReaderAt) (a Asyncio, err error) {
	defer func() {
		if p := recover(); p != nil { // debug/elf on a hostile file
			err = fmt.Errorf("reading ELF: %v", p)
		}
	}()
	img, err := load(r)
	if err != nil {
		return Asyncio{}, err
	}
	wakeup, err := img.method("task_wakeup", MethO)
	if err != nil {
		return Asyncio{}, err
	}
	task, err := img.typeSlots("Task", "_asyncio.Task")
	if err != nil {
		return Asyncio{}, err
	}
	step, err := img.typeSlots("TaskStepMethWrapper", "_asyncio.TaskStepMethWrapper")
	if err != nil {
		return Asyncio{}, err
	}
	for _, f := range []struct {
		dst  *uint64
		addr uint64
		what string
	}{
		{&a.Init, task[slotInit], "Task's tp_init"},
		{&a.Dealloc, task[slotDealloc], "Task's tp_dealloc"},
		{&a.Step, step[slotCall], "TaskStepMethWrapper's tp_call"},
		{&a.Wakeup, wakeup, "task_wakeup"},
	} {
		off, ok := elfaddr.FileOffset(img.f, f.addr)
		if f.addr == 0 || !ok {
			return Asyncio{}, fmt.Errorf("%s: not found in the module's code", f.what)
		}
		*f.dst = off
	}
	return a, nil
}

// load reads an x86-64 ELF shared object's segments and relative
// relocations.
func load(r io.ReaderAt) (*image, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("reading ELF: %w", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.ByteOrder != binary.LittleEndian {
		return nil, fmt.Errorf("not an x86-64 little-endian ELF64 file (%v %v)", f.Class, f.Machine)
	}
	img := &image{f: f, ptrs: map[uint64]uint64{}}
	if err := img.readRelocs(); err != nil {
		return nil, err
	}
	return img, nil
}

// method returns the address of the function of the one PyMethodDef named
// name, whose flags must include flags.
func (m *image) method(name string, flags uint32) (uint64, error) {
	var found []uint64
	for slot, target := range m.ptrs {
		if s, ok := m.cstring(target, len(name)); !ok || s != name {
			continue
		}
		fn, ok := m.ptrs[slot+8]
		if !ok || !m.executable(fn) {
			continue
		}
		if fl, err := m.u32(slot + 16); err != nil || fl&flags != flags {
			continue
		}
		found = append(found, fn)
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("method %s: %d method table entries, want 1", name, len(found))
	}
	return found[0], nil
}

// typeSlots returns the slot functions (by Py_tp_* id: call, dealloc,
// init) of the one type named by one of names, a static PyTypeObject or a
// PyType_Spec.
func (m *image) typeSlots(names ...string) (map[int]uint64, error) {
	var found []map[int]uint64
	for slot, target := range m.ptrs {
		s, ok := m.cstring(target, 40)
		if !ok || !contains(names, s) {
			continue
		}
		if t := m.staticType(slot - typeName); t != nil {
			found = append(found, t)
		} else if t := m.specSlots(slot); t != nil {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("type %s: %d definitions, want 1", names[len(names)-1], len(found))
	}
	return found[0], nil
}

// staticType reads the slot functions of a static PyTypeObject at address
// t: its reference count is 1 (PyVarObject_HEAD_INIT) and its tp_dealloc is
// code; nil when it is not one.
func (m *image) staticType(t uint64) map[int]uint64 {
	var refcnt [8]byte
	if err := m.read(t, refcnt[:]); err != nil || binary.LittleEndian.Uint64(refcnt[:]) != 1 {
		return nil
	}
	dealloc, ok := m.ptrs[t+typeDealloc]
	if !ok || !m.executable(dealloc) {
		return nil
	}
	return map[int]uint64{slotDealloc: dealloc, slotCall: m.code(t + typeCall), slotInit: m.code(t + typeInit)}
}

// specSlots reads the slot array of a PyType_Spec whose name field is at
// spec: {name, basicsize, itemsize, flags, slots}, slots an array of
// {int slot; void *pfunc} ending with {0, NULL}; nil when it is not one.
func (m *image) specSlots(spec uint64) map[int]uint64 {
	arr, ok := m.ptrs[spec+24]
	if !ok {
		return nil
	}
	out := map[int]uint64{}
	for i := uint64(0); i < maxSlots; i++ {
		id, err := m.u32(arr + 16*i)
		if err != nil {
			return nil
		}
		if id == 0 {
			if len(out) == 0 {
				return nil
			}
			return out
		}
		if fn := m.code(arr + 16*i + 8); fn != 0 {
			out[int(id)] = fn
		}
	}
	return nil // no end within maxSlots: not a slot array
}

// code returns the code address the relocation at slot sets, or 0.
func (m *image) code(slot uint64) uint64 {
	if fn, ok := m.ptrs[slot]; ok && m.executable(fn) {
		return fn
	}
	return 0
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
