# SPDX-License-Identifier: MIT
"""unimem from Python, through ctypes: Blocks, Tapes and Layouts, and views of them that
NumPy, PyTorch, CuPy and JAX take with no copy through DLPack (``__dlpack__`` and
``__dlpack_device__``, the PyCapsule "dltensor" protocol).

    import numpy as np, unimem
    with unimem.Layout(weights=1 << 30, scratch=64 << 20, history=0) as lay:
        tensors = lay.weights.load_safetensors("model.safetensors")
        w = np.from_dlpack(tensors["lm_head.weight"])          # the Tape's own pages
        x = lay.scratch.take_view("F32", (4096,))
        np.from_dlpack(x)[:] = 1.0                             # written in place
        t = torch.from_dlpack(x.to_device())                   # the same pages, on the GPU

PyTorch users start with ``unimem.torch.load_file(path, device="cuda")`` (the signature
and results of ``safetensors.torch.load_file``): the checkpoint is streamed from disk into
GPU memory through a small pinned staging ring (``Weights`` below is the same thing for
any framework).

The library is libunimem-ffi (built beside libunimem): the inline hot paths of the C
headers (unimem_tape_take, unimem_tape_clear, ...) exported as functions, plus, through
its dependency on libunimem, everything else. It is found, in this order: the
environment variable UNIMEM_FFI_LIBRARY (a path; the tests point it into the build tree);
next to this file (a package installed with pip: the libraries are inside it); the
library directory `meson install` put it in (recorded in unimem/_config.py); the
system's library search.

A view is plain data (Block, offset, dtype, shape, strides). Each ``__dlpack__`` makes a
DLPack tensor that holds the Block: closing the Block, Tape or Layout in Python leaves the
memory mapped until every array made from it is gone.
"""

import ctypes
import ctypes.util
import os

__all__ = ['Block', 'Tape', 'Layout', 'View', 'Weights', 'UnimemError', 'gpu_count',
           'library', 'DTYPES', 'READ_BUFFERED', 'READ_DIRECT', 'WEIGHTS_CPU']

# Flags of the C API.
BLOCK_UNPINNED = 1
BLOCK_HUGE = 2
BLOCK_PRIVATE = 4
VIEW_DEVICE = 1
READ_BUFFERED = 1
READ_DIRECT = 2
WEIGHTS_CPU = -1
WEIGHTS_ALIGN = 256

# DLPack device types (DLDeviceType).
KDLCPU = 1
KDLCUDA = 2

# unimem_dtype: safetensors name -> (code, bytes, numpy name or None)
DTYPES = {
    'BOOL': (1, 1, 'bool'), 'U8': (2, 1, 'uint8'), 'I8': (3, 1, 'int8'),
    'U16': (4, 2, 'uint16'), 'I16': (5, 2, 'int16'), 'U32': (6, 4, 'uint32'),
    'I32': (7, 4, 'int32'), 'U64': (8, 8, 'uint64'), 'I64': (9, 8, 'int64'),
    'F16': (10, 2, 'float16'), 'BF16': (11, 2, None), 'F32': (12, 4, 'float32'),
    'F64': (13, 8, 'float64'), 'F8_E4M3': (14, 1, None), 'F8_E5M2': (15, 1, None),
}
_DTYPE_NAMES = {code: name for name, (code, _, _) in DTYPES.items()}
_NUMPY_NAMES = {np_name: name for name, (_, _, np_name) in DTYPES.items() if np_name}

MAX_DIMS = 8


class _View(ctypes.Structure):
    """struct unimem_view (include/unimem/view.h)."""
    _fields_ = [('block', ctypes.c_void_p), ('offset', ctypes.c_uint64),
                ('dtype', ctypes.c_int32), ('ndim', ctypes.c_int32),
                ('shape', ctypes.c_int64 * MAX_DIMS), ('strides', ctypes.c_int64 * MAX_DIMS)]


_Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _DLTensor(ctypes.Structure):
    _fields_ = [('data', ctypes.c_void_p), ('device_type', ctypes.c_int),
                ('device_id', ctypes.c_int32), ('ndim', ctypes.c_int32),
                ('code', ctypes.c_uint8), ('bits', ctypes.c_uint8), ('lanes', ctypes.c_uint16),
                ('shape', ctypes.POINTER(ctypes.c_int64)),
                ('strides', ctypes.POINTER(ctypes.c_int64)), ('byte_offset', ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [('dl_tensor', _DLTensor), ('manager_ctx', ctypes.c_void_p),
                ('deleter', _Deleter)]


def _library_dirs():
    dirs = [os.path.dirname(os.path.abspath(__file__))]
    try:
        from . import _config  # written by meson install
        dirs.append(_config.LIBDIR)
    except ImportError:
        pass
    return dirs


def _first(d, stem):
    """d/stem.N (the soname), else the shortest d/stem.N.* (a wheel's versioned file),
    else None."""
    try:
        names = sorted((n for n in os.listdir(d) if n.startswith(stem + '.')),
                       key=lambda n: (len(n), n))
    except OSError:
        return None
    return os.path.join(d, names[0]) if names else None


def _load_library():
    path = os.environ.get('UNIMEM_FFI_LIBRARY')
    if path:
        return ctypes.CDLL(path)
    for d in _library_dirs():
        # A wheel holds the versioned files alone (libunimem.so.0.1.0): no soname links.
        ffi = _first(d, 'libunimem-ffi.so')
        if ffi:
            core = _first(d, 'libunimem.so')
            if core:  # libunimem-ffi's dependency: loaded first, it answers to its soname
                ctypes.CDLL(core, mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(ffi)
    return ctypes.CDLL(ctypes.util.find_library('unimem-ffi') or 'libunimem-ffi.so.1')


_lib = _load_library()
P = ctypes.c_void_p
_sigs = {
    'unimem_strerror': (ctypes.c_char_p, [ctypes.c_int]),
    'unimem_version': (ctypes.c_char_p, []),
    'unimem_block_open': (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_size_t, ctypes.c_uint]),
    'unimem_block_lookup': (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_uint32]),
    'unimem_block_close': (None, [P]),
    'unimem_block_ptr': (P, [P]),
    'unimem_block_size': (ctypes.c_size_t, [P]),
    'unimem_block_id': (ctypes.c_uint32, [P]),
    'unimem_block_fd': (ctypes.c_int, [P]),
    'unimem_block_pinned': (ctypes.c_bool, [P]),
    'unimem_tape_start_flags': (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_size_t,
                                               ctypes.c_uint]),
    'unimem_tape_close': (None, [P]),
    'unimem_tape_block': (P, [P]),
    # The inline hot paths, out of line in libunimem-ffi.
    'unimem_tape_take': (P, [P, ctypes.c_size_t, ctypes.c_size_t]),
    'unimem_tape_clear': (None, [P]),
    'unimem_tape_used': (ctypes.c_size_t, [P]),
    'unimem_tape_capacity': (ctypes.c_size_t, [P]),
    'unimem_layout_open_flags': (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_size_t,
                                                ctypes.c_size_t, ctypes.c_size_t,
                                                ctypes.c_uint]),
    'unimem_layout_close': (None, [P]),
    'unimem_layout_weights': (P, [P]),
    'unimem_layout_scratch': (P, [P]),
    'unimem_layout_history': (P, [P]),
    'unimem_layout_clear_pass': (None, [P]),
    'unimem_layout_clear_talk': (None, [P]),
    'unimem_layout_block': (P, [P]),
    'unimem_gpu_count': (ctypes.c_int, []),
    'unimem_gpu_map': (ctypes.c_int, [P, ctypes.POINTER(P)]),
    'unimem_gpu_unmap': (ctypes.c_int, [P]),
    'unimem_view_init': (ctypes.c_int, [ctypes.POINTER(_View), P, ctypes.c_uint64,
                                        ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int64)]),
    'unimem_view_check': (ctypes.c_int, [ctypes.POINTER(_View)]),
    'unimem_view_ptr': (P, [ctypes.POINTER(_View)]),
    'unimem_view_to_dlpack': (ctypes.c_int, [ctypes.POINTER(_View), ctypes.c_uint,
                                             ctypes.POINTER(P)]),
    'unimem_tape_read_file': (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_uint,
                                             ctypes.POINTER(P),
                                             ctypes.POINTER(ctypes.c_size_t)]),
    'unimem_safetensors_load': (ctypes.c_int, [ctypes.POINTER(P), P, ctypes.c_char_p,
                                               ctypes.c_size_t, ctypes.c_uint]),
    'unimem_safetensors_close': (None, [P]),
    'unimem_safetensors_count': (ctypes.c_size_t, [P]),
    'unimem_safetensors_name': (ctypes.c_char_p, [P, ctypes.c_size_t]),
    'unimem_safetensors_view': (ctypes.POINTER(_View), [P, ctypes.c_size_t]),
    'unimem_safetensors_metadata': (ctypes.c_char_p, [P, ctypes.c_char_p]),
    'unimem_safetensors_metadata_key': (ctypes.c_char_p, [P, ctypes.c_size_t]),
    'unimem_safetensors_moved': (ctypes.c_size_t, [P]),
    # Streaming weights (include/unimem/weights.h).
    'unimem_weights_open': (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_uint]),
    'unimem_weights_upload': (ctypes.c_int, [P, ctypes.c_int, P, ctypes.c_size_t]),
    'unimem_weights_close': (None, [P]),
    'unimem_weights_bytes': (ctypes.c_size_t, [P]),
    'unimem_weights_count': (ctypes.c_size_t, [P]),
    'unimem_weights_name': (ctypes.c_char_p, [P, ctypes.c_size_t]),
    'unimem_weights_dtype': (ctypes.c_int, [P, ctypes.c_size_t]),
    'unimem_weights_ndim': (ctypes.c_int, [P, ctypes.c_size_t]),
    'unimem_weights_shape': (ctypes.POINTER(ctypes.c_int64), [P, ctypes.c_size_t]),
    'unimem_weights_nbytes': (ctypes.c_size_t, [P, ctypes.c_size_t]),
    'unimem_weights_offset': (ctypes.c_size_t, [P, ctypes.c_size_t]),
    'unimem_weights_ptr': (P, [P, ctypes.c_size_t]),
    'unimem_weights_metadata': (ctypes.c_char_p, [P, ctypes.c_char_p]),
    'unimem_weights_metadata_key': (ctypes.c_char_p, [P, ctypes.c_size_t]),
    'unimem_weights_files': (ctypes.c_size_t, [P]),
    'unimem_weights_staging': (ctypes.c_size_t, [P]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args

library = _lib


class UnimemError(OSError):
    """A negative errno from unimem, with unimem_strerror's message."""

    def __init__(self, err, what=''):
        msg = _lib.unimem_strerror(err).decode('utf-8', 'replace')
        super().__init__(-err if err < 0 else err, f'{what}: {msg}' if what else msg)


def _check(err, what):
    if err:
        raise UnimemError(err, what)


def gpu_count():
    """GPUs usable for mapping; 0 without a driver or a GPU."""
    return _lib.unimem_gpu_count()


def version():
    return _lib.unimem_version().decode()


# PyCapsule through the C API of the running interpreter (ctypes.pythonapi holds the GIL).
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [P, ctypes.c_char_p, P]
_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.restype = ctypes.c_int
_capsule_is_valid.argtypes = [P, ctypes.c_char_p]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = P
_capsule_pointer.argtypes = [P, ctypes.c_char_p]
_DLTENSOR = b'dltensor'


@ctypes.CFUNCTYPE(None, P)
def _capsule_destructor(capsule):
    # The capsule is being freed (refcount 0): take it as a bare pointer, never as a
    # Python object. A consumer renames what it takes to "used_dltensor" and calls the
    # deleter itself; only a capsule nobody took is ours to delete.
    try:
        if _capsule_is_valid(capsule, _DLTENSOR):
            ptr = _capsule_pointer(capsule, _DLTENSOR)
            managed = _DLManagedTensor.from_address(ptr)
            managed.deleter(ptr)
    except Exception:  # noqa: BLE001 - nothing may escape a destructor
        pass


_destructor_ptr = ctypes.cast(_capsule_destructor, P)


def _shape_tuple(shape):
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def _dtype_name(dtype):
    """'F32', 'float32', numpy dtypes and torch-like names all map to a safetensors name."""
    if isinstance(dtype, str) and dtype.upper() in DTYPES:
        return dtype.upper()
    name = str(getattr(dtype, 'name', dtype))
    if name in _NUMPY_NAMES:
        return _NUMPY_NAMES[name]
    if name == 'bfloat16':
        return 'BF16'
    raise ValueError(f'unknown dtype {dtype!r}')


class _Closes:
    """close() on leaving a with-block and when collected (quietly at interpreter
    shutdown)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _block_flags(pinned, huge, private):
    """The unimem_block_open() flags of the keyword arguments of Block, Tape and Layout."""
    return (0 if pinned else BLOCK_UNPINNED) | (BLOCK_HUGE if huge else 0) | \
        (BLOCK_PRIVATE if private else 0)


class Block(_Closes):
    """A pinned, shareable Block (unimem_block). Close it, or use it as a context
    manager; arrays made from its views keep the memory alive after close.
    private=True: this process's alone (no lookup, no send, not inherited by fork), and
    with huge=True the fast way to open a large pinned Block on machines that give
    huge pages to anonymous memory only (most, by default; see unimem_block_open)."""

    def __init__(self, size=None, *, pinned=True, huge=False, private=False, _handle=None,
                 _owner=None):
        self._owner = _owner
        self._owned = _handle is None
        self._gpu_maps = 0
        if _handle is None:
            h = P()
            flags = _block_flags(pinned, huge, private)
            _check(_lib.unimem_block_open(ctypes.byref(h), size, flags), 'unimem_block_open')
            _handle = h.value
        self._h = _handle

    @classmethod
    def lookup(cls, block_id):
        """The Block another process of the same user named by its id."""
        h = P()
        _check(_lib.unimem_block_lookup(ctypes.byref(h), block_id), 'unimem_block_lookup')
        return cls(_handle=h.value)

    @property
    def handle(self):
        """The unimem_block pointer (an int); ValueError once closed."""
        if self._h is None or (self._owner is not None and self._owner._closed()):
            raise ValueError('the Block is closed')
        return self._h

    def _closed(self):
        return self._h is None or (self._owner is not None and self._owner._closed())

    @property
    def ptr(self):
        return _lib.unimem_block_ptr(self.handle)

    @property
    def size(self):
        return _lib.unimem_block_size(self.handle)

    @property
    def id(self):
        return _lib.unimem_block_id(self.handle)

    @property
    def pinned(self):
        return _lib.unimem_block_pinned(self.handle)

    def view(self, offset, dtype, shape, strides=None, device='cpu'):
        """A View of the elements at byte `offset` (row-major unless `strides`, counted
        in elements as DLPack does)."""
        return View(self, offset, dtype, shape, strides, device)

    def gpu_map(self):
        """Map the Block into the GPU (zero-copy); the device address. Reference
        counted: each map is matched by gpu_unmap() (close drops what is left)."""
        d = P()
        _check(_lib.unimem_gpu_map(self.handle, ctypes.byref(d)), 'unimem_gpu_map')
        self._gpu_maps += 1
        return d.value

    def gpu_unmap(self):
        _check(_lib.unimem_gpu_unmap(self.handle), 'unimem_gpu_unmap')
        self._gpu_maps -= 1

    def close(self):
        if self._h is not None and self._owned:
            _lib.unimem_block_close(self._h)
        self._h = None


class View:
    """A tensor inside a Block: offset, dtype, shape, strides. Exports itself through
    DLPack: np.from_dlpack(view), torch.from_dlpack(view). `device` 'cpu' gives kDLCPU
    (the host address), 'cuda' kDLCUDA (the GPU address of the same pages)."""

    def __init__(self, block, offset, dtype, shape, strides=None, device='cpu'):
        if device not in ('cpu', 'cuda'):
            raise ValueError("device is 'cpu' or 'cuda'")
        self.block = block
        self.dtype = _dtype_name(dtype)
        self.shape = _shape_tuple(shape)
        self.device = device
        if len(self.shape) > MAX_DIMS:
            raise ValueError(f'at most {MAX_DIMS} dimensions')
        self._v = _View()
        shape_arr = (ctypes.c_int64 * MAX_DIMS)(*self.shape)
        err = _lib.unimem_view_init(ctypes.byref(self._v), block.handle, offset,
                                    DTYPES[self.dtype][0], len(self.shape), shape_arr)
        if strides is not None:
            strides = _shape_tuple(strides)
            if len(strides) != len(self.shape):
                raise ValueError('strides and shape differ in length')
            for i, s in enumerate(strides):
                self._v.strides[i] = s
            err = _lib.unimem_view_check(ctypes.byref(self._v))
        _check(err, 'unimem_view_init')
        self.offset = offset
        self.strides = tuple(self._v.strides[i] for i in range(len(self.shape)))

    @classmethod
    def _from_c(cls, block, cview):
        v = cls.__new__(cls)
        v.block = block
        v.dtype = _DTYPE_NAMES[cview.dtype]
        v.shape = tuple(cview.shape[i] for i in range(cview.ndim))
        v.strides = tuple(cview.strides[i] for i in range(cview.ndim))
        v.offset = cview.offset
        v.device = 'cpu'
        v._v = _View.from_buffer_copy(cview)
        return v

    def __repr__(self):
        return (f'View({self.dtype}, shape={self.shape}, offset={self.offset}, '
                f'device={self.device})')

    @property
    def ptr(self):
        """Host address of element 0."""
        self._v.block = self.block.handle
        return _lib.unimem_view_ptr(ctypes.byref(self._v))

    @property
    def nbytes(self):
        n = DTYPES[self.dtype][1]
        for d in self.shape:
            n *= d
        return n

    def to_device(self, device='cuda'):
        """The same view, exported as `device` ('cuda' or 'cpu')."""
        v = View._from_c(self.block, self._v)
        v.device = device
        return v

    def __dlpack_device__(self):
        return (KDLCUDA, 0) if self.device == 'cuda' else (KDLCPU, 0)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        # stream: nothing of unimem's is in flight on any stream; the data is ready.
        # max_version: this is a DLPack 0.8 (unversioned) tensor, which every consumer
        # takes. dl_device: the host and the GPU see the same pages, so either is served
        # without a copy. copy=True cannot be honoured: unimem never copies.
        if copy:
            raise BufferError('unimem views are never copied (copy=True)')
        device = self.device
        if dl_device is not None:
            kind = int(dl_device[0])
            if kind == KDLCPU:
                device = 'cpu'
            elif kind == KDLCUDA and int(dl_device[1]) == 0:
                device = 'cuda'
            else:
                raise BufferError(f'unimem cannot export to device {tuple(dl_device)}')
        self._v.block = self.block.handle
        out = P()
        _check(_lib.unimem_view_to_dlpack(ctypes.byref(self._v),
                                          VIEW_DEVICE if device == 'cuda' else 0,
                                          ctypes.byref(out)), 'unimem_view_to_dlpack')
        try:
            return _capsule_new(out.value, _DLTENSOR, _destructor_ptr)
        except BaseException:
            managed = _DLManagedTensor.from_address(out.value)
            managed.deleter(out.value)
            raise

    @property
    def __array_interface__(self):
        """NumPy's array interface: np.asarray(view) is a writable ndarray over the same
        bytes (np.from_dlpack gives a read-only one before NumPy 2.1: DLPack 0.8 has no
        way to say writable). The View then holds one DLPack export of itself, so that
        the memory outlives a close of its Block for as long as the View (the array's
        base) lives."""
        np_name = DTYPES[self.dtype][2]
        if np_name is None:
            raise TypeError(f'NumPy has no {self.dtype}')
        if self.device != 'cpu':
            raise TypeError('a device view has no host array interface; use to_device("cpu")')
        if getattr(self, '_hold', None) is None:
            self._v.block = self.block.handle
            out = P()
            _check(_lib.unimem_view_to_dlpack(ctypes.byref(self._v), 0, ctypes.byref(out)),
                   'unimem_view_to_dlpack')
            self._hold = out.value
        import numpy as np
        size = DTYPES[self.dtype][1]
        return {
            'version': 3,
            'shape': self.shape,
            'typestr': np.dtype(np_name).str,
            'data': (_DLManagedTensor.from_address(self._hold).dl_tensor.data, False),
            'strides': tuple(s * size for s in self.strides),
        }

    def __del__(self):
        hold = getattr(self, '_hold', None)
        if hold:
            self._hold = None
            try:
                _DLManagedTensor.from_address(hold).deleter(hold)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    def numpy(self):
        """A writable ndarray over the same bytes (np.asarray(self))."""
        import numpy as np
        return np.asarray(self)


class Tape(_Closes):
    """A bump allocator over a Block (unimem_tape). Tape(size) owns a new Block (pinned,
    huge, private: as for Block); the Tapes of a Layout belong to it."""

    def __init__(self, size=None, *, pinned=True, huge=False, private=False, _handle=None,
                 _owner=None):
        self._owner = _owner
        if _handle is None:
            h = P()
            _check(_lib.unimem_tape_start_flags(ctypes.byref(h), size,
                                                _block_flags(pinned, huge, private)),
                   'unimem_tape_start')
            _handle = h.value
        self._t = _handle
        self.block = Block(_handle=_lib.unimem_tape_block(_handle), _owner=self)

    def _closed(self):
        return self._t is None or (self._owner is not None and self._owner._closed())

    @property
    def handle(self):
        if self._closed():
            raise ValueError('the Tape is closed')
        return self._t

    def take(self, size, align=64):
        """Reserve `size` bytes; their byte offset in the Tape's Block. MemoryError
        when the Tape is full."""
        p = _lib.unimem_tape_take(self.handle, size, align)
        if not p:
            raise MemoryError(f'Tape full (or align {align} not a power of two)')
        return p - self.block.ptr

    def take_view(self, dtype, shape, align=64, device='cpu'):
        """Reserve room for a row-major tensor and return its View."""
        dt = _dtype_name(dtype)
        n = DTYPES[dt][1]
        for d in _shape_tuple(shape):
            n *= d
        return View(self.block, self.take(n, align), dt, shape, device=device)

    def clear(self):
        _lib.unimem_tape_clear(self.handle)

    @property
    def used(self):
        return _lib.unimem_tape_used(self.handle)

    @property
    def capacity(self):
        return _lib.unimem_tape_capacity(self.handle)

    def read_file(self, path, flags=0):
        """Read a whole file into the Tape (O_DIRECT for what is not cached); a U8 View
        of its bytes."""
        out, length = P(), ctypes.c_size_t()
        _check(_lib.unimem_tape_read_file(self.handle, os.fsencode(path), flags,
                                          ctypes.byref(out), ctypes.byref(length)),
               'unimem_tape_read_file')
        offset = (out.value or self.block.ptr) - self.block.ptr
        return View(self.block, offset, 'U8', (length.value,))

    def load_safetensors(self, path, align=0, flags=0):
        """Load a safetensors file into the Tape; a SafeTensors mapping name -> View.
        align 0: every tensor 256-aligned; align=1 keeps the file-offset placement."""
        h = P()
        _check(_lib.unimem_safetensors_load(ctypes.byref(h), self.handle, os.fsencode(path),
                                            align, flags), 'unimem_safetensors_load')
        try:
            return SafeTensors(self.block, h.value)
        finally:
            _lib.unimem_safetensors_close(h.value)

    def close(self):
        if self._t is not None and self._owner is None:
            _lib.unimem_tape_close(self._t)
        self._t = None


class SafeTensors(dict):
    """name -> View, in the order of the file's data; .metadata holds __metadata__ and
    .moved the number of tensors moved to meet the alignment."""

    def __init__(self, block, handle):
        super().__init__()
        n = _lib.unimem_safetensors_count(handle)
        for i in range(n):
            name = _lib.unimem_safetensors_name(handle, i).decode('utf-8')
            self[name] = View._from_c(block, _lib.unimem_safetensors_view(handle, i).contents)
        self.moved = _lib.unimem_safetensors_moved(handle)
        self.metadata = {}
        i = 0
        while True:
            key = _lib.unimem_safetensors_metadata_key(handle, i)
            if key is None:
                break
            value = _lib.unimem_safetensors_metadata(handle, key)
            self.metadata[key.decode('utf-8')] = value.decode('utf-8')
            i += 1


class Layout(_Closes):
    """Three Tapes in one Block: weights, scratch (clear_pass) and history (clear_talk).
    pinned, huge, private: the Block's, as for Block."""

    def __init__(self, weights, scratch, history, *, pinned=True, huge=False, private=False):
        h = P()
        _check(_lib.unimem_layout_open_flags(ctypes.byref(h), weights, scratch, history,
                                             _block_flags(pinned, huge, private)),
               'unimem_layout_open')
        self._l = h.value
        self.block = Block(_handle=_lib.unimem_layout_block(self._l), _owner=self)
        self.weights = Tape(_handle=_lib.unimem_layout_weights(self._l), _owner=self)
        self.scratch = Tape(_handle=_lib.unimem_layout_scratch(self._l), _owner=self)
        self.history = Tape(_handle=_lib.unimem_layout_history(self._l), _owner=self)

    def _closed(self):
        return self._l is None

    def clear_pass(self):
        _lib.unimem_layout_clear_pass(self._handle())

    def clear_talk(self):
        _lib.unimem_layout_clear_talk(self._handle())

    def _handle(self):
        if self._l is None:
            raise ValueError('the Layout is closed')
        return self._l

    def close(self):
        if self._l is not None:
            _lib.unimem_layout_close(self._l)
        self._l = None


class Weights(_Closes):
    """A safetensors checkpoint (a file, a model.safetensors.index.json, or a directory
    holding one), parsed; ``upload()`` streams it into one buffer (GPU or host memory),
    each tensor at a multiple of 256 bytes from the buffer's start.

        with unimem.Weights("model.safetensors.index.json") as w:
            buf = torch.empty(w.nbytes, dtype=torch.uint8, device="cuda")
            w.upload(0, buf.data_ptr(), w.nbytes)
            for name, dtype, shape, offset, nbytes in w.tensors: ...
    """

    def __init__(self, path, flags=0):
        h = P()
        _check(_lib.unimem_weights_open(ctypes.byref(h), os.fsencode(path), flags),
               f'unimem_weights_open({path!r})')
        self._w = h.value
        n = _lib.unimem_weights_count(self._w)
        self.nbytes = _lib.unimem_weights_bytes(self._w)
        self.files = _lib.unimem_weights_files(self._w)
        self.tensors = []
        for i in range(n):
            ndim = _lib.unimem_weights_ndim(self._w, i)
            shape = _lib.unimem_weights_shape(self._w, i)
            self.tensors.append((_lib.unimem_weights_name(self._w, i).decode('utf-8'),
                                 _DTYPE_NAMES[_lib.unimem_weights_dtype(self._w, i)],
                                 tuple(shape[d] for d in range(ndim)),
                                 _lib.unimem_weights_offset(self._w, i),
                                 _lib.unimem_weights_nbytes(self._w, i)))
        self.metadata = {}
        i = 0
        while True:
            key = _lib.unimem_weights_metadata_key(self._w, i)
            if key is None:
                break
            self.metadata[key.decode('utf-8')] = \
                _lib.unimem_weights_metadata(self._w, key).decode('utf-8')
            i += 1

    def _closed(self):
        return self._w is None

    def upload(self, device, ptr=None, cap=0):
        """Stream every tensor to `device` (a CUDA ordinal, or WEIGHTS_CPU): into the
        caller's buffer at address `ptr` (cap bytes), or, ptr None, into memory unimem
        allocates and frees with close(). Returns the buffer's address."""
        if self._w is None:
            raise ValueError('the Weights are closed')
        _check(_lib.unimem_weights_upload(self._w, device, ptr, cap), 'unimem_weights_upload')
        return _lib.unimem_weights_ptr(self._w, 0) if self.tensors else ptr

    @property
    def staging(self):
        """Bytes of the staging ring the upload used."""
        return _lib.unimem_weights_staging(self._w) if self._w else 0

    def close(self):
        if self._w is not None:
            _lib.unimem_weights_close(self._w)
        self._w = None
