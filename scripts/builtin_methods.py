"""Method names of the languages' built-in types, for the eval's oracle.

``obj.m(`` is not a workspace method ``m`` when ``m`` is also a method of a built-in type
(``issue.maximum.toString()``, ``signal.addEventListener(...)``, ``", ".join(parts)``): the oracle
cannot tell which one is meant without the receiver's type, so such sites count as ambiguous.

Python's come from this interpreter; ECMAScript's were recorded from Node 20 (the prototypes of the
standard built-ins, iterators and generators, EventTarget/AbortSignal, streams, fetch's Headers/
Request/Response, URL, typed arrays, and the static methods of Object, Array, Promise, JSON, Math, ...).
"""

from __future__ import annotations

import collections
import io
import logging
import pathlib
import re
import threading

_PYTHON_TYPES = (str, bytes, bytearray, list, dict, set, frozenset, tuple, int, float, complex, object,
                 io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.BytesIO, io.StringIO,
                 re.Pattern, re.Match, pathlib.Path, collections.OrderedDict, collections.deque,
                 collections.Counter, collections.defaultdict, threading.Thread, threading.Event,
                 logging.Logger)

PYTHON = frozenset(name for cls in _PYTHON_TYPES for name in dir(cls) if not name.startswith("_"))

ECMASCRIPT = frozenset((
    "UTC", "abort", "abs", "acos", "acosh", "add", "addEventListener", "all", "allSettled", "anchor",
    "any", "append", "apply", "arrayBuffer", "asin", "asinh", "assign", "at", "atan", "atan2", "atanh",
    "big", "bind", "blink", "blob", "bold", "bytes", "call", "canParse", "cancel", "catch", "cbrt",
    "ceil", "charAt", "charCodeAt", "clear", "clone", "close", "clz32", "codePointAt", "compile",
    "concat", "construct", "copyWithin", "cos", "cosh", "create", "createObjectURL", "decode",
    "defineProperties", "defineProperty", "delete", "deleteProperty", "dispatchEvent", "encode",
    "encodeInto", "endsWith", "entries", "error", "every", "exec", "exp", "expm1", "fill", "filter",
    "finally", "find", "findIndex", "findLast", "findLastIndex", "fixed", "flat", "flatMap", "floor",
    "fontcolor", "fontsize", "for", "forEach", "formData", "freeze", "from", "fromCharCode",
    "fromCodePoint", "fromEntries", "fround", "get", "getAll", "getBigInt64", "getBigUint64", "getDate",
    "getDay", "getFloat32", "getFloat64", "getFullYear", "getHours", "getInt16", "getInt32", "getInt8",
    "getMilliseconds", "getMinutes", "getMonth", "getOwnPropertyDescriptor", "getOwnPropertyDescriptors",
    "getOwnPropertyNames", "getOwnPropertySymbols", "getPrototypeOf", "getReader", "getSeconds",
    "getSetCookie", "getTime", "getTimezoneOffset", "getUTCDate", "getUTCDay", "getUTCFullYear",
    "getUTCHours", "getUTCMilliseconds", "getUTCMinutes", "getUTCMonth", "getUTCSeconds", "getUint16",
    "getUint32", "getUint8", "getWriter", "getYear", "has", "hasOwn", "hasOwnProperty", "hypot", "imul",
    "includes", "indexOf", "is", "isArray", "isExtensible", "isFinite", "isFrozen", "isInteger", "isNaN",
    "isPrototypeOf", "isSafeInteger", "isSealed", "isWellFormed", "italics", "join", "json", "keyFor",
    "keys", "lastIndexOf", "link", "localeCompare", "log", "log10", "log1p", "log2", "map", "match",
    "matchAll", "max", "min", "next", "normalize", "now", "of", "ownKeys", "padEnd", "padStart", "parse",
    "parseFloat", "parseInt", "pipeThrough", "pipeTo", "pop", "pow", "preventExtensions",
    "propertyIsEnumerable", "push", "race", "random", "raw", "read", "redirect", "reduce", "reduceRight",
    "reject", "releaseLock", "removeEventListener", "repeat", "replace", "replaceAll", "resize",
    "resolve", "return", "reverse", "revokeObjectURL", "round", "seal", "search", "set", "setBigInt64",
    "setBigUint64", "setDate", "setFloat32", "setFloat64", "setFullYear", "setHours", "setInt16",
    "setInt32", "setInt8", "setMilliseconds", "setMinutes", "setMonth", "setPrototypeOf", "setSeconds",
    "setTime", "setUTCDate", "setUTCFullYear", "setUTCHours", "setUTCMilliseconds", "setUTCMinutes",
    "setUTCMonth", "setUTCSeconds", "setUint16", "setUint32", "setUint8", "setYear", "shift", "sign",
    "sin", "sinh", "slice", "small", "some", "sort", "splice", "split", "sqrt", "startsWith", "strike",
    "stringify", "sub", "subarray", "substr", "substring", "sup", "tan", "tanh", "tee", "test", "text",
    "then", "throw", "throwIfAborted", "timeout", "toDateString", "toExponential", "toFixed",
    "toGMTString", "toISOString", "toJSON", "toLocaleDateString", "toLocaleLowerCase", "toLocaleString",
    "toLocaleTimeString", "toLocaleUpperCase", "toLowerCase", "toPrecision", "toReversed", "toSorted",
    "toSpliced", "toString", "toTimeString", "toUTCString", "toUpperCase", "toWellFormed", "trim",
    "trimEnd", "trimLeft", "trimRight", "trimStart", "trunc", "unshift", "valueOf", "values", "with",
    "write",
))

BY_SUFFIX = {".py": PYTHON, ".ts": ECMASCRIPT, ".tsx": ECMASCRIPT, ".js": ECMASCRIPT, ".mjs": ECMASCRIPT}
