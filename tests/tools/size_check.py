#!/usr/bin/env python3
"""Size check: no source file over 800 lines, no function over 120 lines.

Lists every non-test C++ source file (*.h, *.cc under the project's role
directories) longer than MAX_FILE_LINES and every function definition longer
than MAX_FUNCTION_LINES, one per line as `path:line: ...`, and exits 1 if
there is any (0 otherwise).

Tests do not count: *_test.cc, *_bench.cc, *_test_util.*, test_util.*,
fake_*.* and everything under tests/ (end-to-end tests, benchmarks and test
tools).

The function scanner is pragmatic, not a C++ parser: it blanks comments,
string and character literals and preprocessor lines, then matches braces.
At namespace or class scope a brace block is a function body when the text
before it has a parameter list; namespace, class, struct, union and enum
bodies are not functions themselves (the functions inside them are found).
Everything inside a function body (lambdas, local classes) counts as part
of that function. A function's length runs from the first line of its
signature to its closing brace.

Usage: size_check.py [--root DIR] [--max-file N] [--max-function N] [FILE...]
(with FILEs: checks those; else every non-test source under DIR).
"""

import argparse
import os
import re
import sys

MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 120

# The directories holding the project's C++ sources: every top-level
# directory with a CMakeLists.txt, except the tests and build trees.
def source_dirs(root):
    return sorted(
        d for d in os.listdir(root)
        if os.path.isfile(os.path.join(root, d, "CMakeLists.txt")) and
        d != "tests" and not d.startswith("build"))

SOURCE_EXTS = (".h", ".cc")


def is_test_file(path):
    """True for tests and test helpers (they are not checked)."""
    parts = path.replace(os.sep, "/").split("/")
    if "tests" in parts:
        return True
    name = parts[-1]
    stem = name.rsplit(".", 1)[0]
    return (stem.endswith("_test") or stem.endswith("_bench") or
            stem.endswith("_test_util") or stem == "test_util" or
            stem.startswith("fake_"))


def source_files(root):
    """The non-test sources under root's source directories, sorted."""
    out = []
    for d in source_dirs(root):
        top = os.path.join(root, d)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            for name in filenames:
                if not name.endswith(SOURCE_EXTS):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                if not is_test_file(path):
                    out.append(path)
    return sorted(out)


def count_lines(text):
    """Lines as `wc -l` counts them, plus an unterminated last line."""
    n = text.count("\n")
    if text and not text.endswith("\n"):
        n += 1
    return n


def _blank(s):
    """s with every character but newlines turned into a space."""
    return re.sub(r"[^\n]", " ", s)


_RAW_STRING = re.compile(r'R"([^()\\\s]{0,16})\(')


def strip_code(text):
    """Blanks comments, string/char literals and preprocessor lines.

    Keeps every newline, so offsets map to the same line numbers.
    """
    out = []
    i, n = 0, len(text)
    line_start = True  # only blanks since the last newline
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if line_start and c == "#":
            # A preprocessor directive, with its continuation lines.
            j = i
            while j < n:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                if k > 0 and text[k - 1] == "\\" and k < n:
                    j = k + 1
                    continue
                break
            out.append(_blank(text[i:k]))
            i = k
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            k = text.find("\n", i)
            k = n if k < 0 else k
            out.append(_blank(text[i:k]))
            i = k
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            k = n if k < 0 else k + 2
            out.append(_blank(text[i:k]))
            i = k
            continue
        m = _RAW_STRING.match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = ")" + m.group(1) + '"'
            k = text.find(end, m.end())
            k = n if k < 0 else k + len(end)
            out.append('""' + _blank(text[i + 2:k]))
            i = k
            continue
        if c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            # A string or character literal (a ' after a digit or letter is
            # a digit separator or part of a prefix like u8'x').
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            k = min(j + 1, n)
            out.append(c + _blank(text[i + 1:k - 1]) + (c if k - 1 > i else ""))
            i = k
            continue
        out.append(c)
        i += 1
    return "".join(out)


_CONTAINER = re.compile(
    r"^\s*(template\s*<.*>\s*)?(class|struct|union|enum)\b", re.S)
_NAMESPACE = re.compile(r"^\s*(inline\s+)?namespace\b|\bextern\s*\"[^\"]*\"$",
                        re.S)
# What may follow a function's parameter list before its body.
_FUNCTION_END = re.compile(
    r"\)\s*((const|override|final|noexcept|mutable|volatile|&&?|"
    r"[A-Z_][A-Z0-9_]*(\([^()]*\))?|->\s*[\w:<>,\s*&]+)\s*)*$", re.S)
# After a constructor's parameter list: a member init list (a single ':')
# whose last member is brace-initialized (`: a_(x), b_{`).
_ACCESS_LABEL = re.compile(r"\s*(public|protected|private)\s*:(?!:)")
_SINGLE_COLON = re.compile(r"(?<!:):(?!:)")
_INIT_MEMBER = re.compile(r"(?<!:)[,:]\s*[A-Za-z_]\w*$")


def _classify(header):
    """What a '{' at namespace or class scope opens, from the text before it.

    Returns "container" (namespace/class/struct/union/enum/extern body),
    "function", or "expr" (an initializer: part of the declaration).
    """
    h = header.strip()
    if _NAMESPACE.search(h):
        return "container"
    if _CONTAINER.search(h) and not _FUNCTION_END.search(h):
        return "container"
    if not h or h[-1] in "=,([{" or re.search(r"\breturn$", h):
        return "expr"
    if ")" in h:
        rest = h[h.find(")") + 1:]
        if _SINGLE_COLON.search(rest) and _INIT_MEMBER.search(rest):
            return "expr"
        return "function"
    return "container"


def _function_name(header):
    """The name before the parameter list, e.g. `DlmClient::Impl::Lock`."""
    h = header.strip()
    depth, cut = 0, None
    for i, ch in enumerate(h):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "(" and depth == 0:
            cut = i
            break
    if cut is None:
        return "?"
    m = re.search(r"([\w:~]+(?:operator\s*\S+)?)\s*$", h[:cut])
    if m:
        return m.group(1)
    return "(lambda)" if h[:cut].rstrip().endswith("]") else "?"


def _match_brace(code, i):
    """Index of the '}' matching the '{' at i (len(code) if unbalanced)."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


def find_functions(text):
    """(name, first line, last line) of each function defined in text."""
    code = strip_code(text)
    found = []

    def line_of(pos):
        return code.count("\n", 0, pos) + 1

    def scan(start, end):
        header_start = start
        i = start
        while i < end:
            ch = code[i]
            if ch in ";}":
                header_start = i + 1
            elif ch == "{":
                header = code[header_start:i]
                # An access label before a member is not part of it.
                label = _ACCESS_LABEL.match(header)
                if label:
                    header_start += label.end()
                    header = header[label.end():]
                kind = _classify(header)
                close = _match_brace(code, i)
                if kind == "container":
                    scan(i + 1, min(close, end))
                    header_start = close + 1
                elif kind == "function":
                    sig = header_start + (len(header) - len(header.lstrip()))
                    found.append((_function_name(header), line_of(sig),
                                  line_of(min(close, len(code) - 1))))
                    header_start = close + 1
                # "expr": the initializer stays part of the declaration.
                i = close
            i += 1

    scan(0, len(code))
    return found


def check_file(path, text, max_file=MAX_FILE_LINES,
               max_function=MAX_FUNCTION_LINES):
    """The findings for one file, as printable lines."""
    out = []
    lines = count_lines(text)
    if lines > max_file:
        out.append(f"{path}:1: file is {lines} lines (max {max_file})")
    for name, first, last in find_functions(text):
        length = last - first + 1
        if length > max_function:
            out.append(f"{path}:{first}: function {name} is {length} lines "
                       f"(max {max_function})")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    parser.add_argument("--max-file", type=int, default=MAX_FILE_LINES)
    parser.add_argument("--max-function", type=int, default=MAX_FUNCTION_LINES)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    root = os.path.normpath(args.root)
    files = args.files or source_files(root)
    findings = []
    for path in files:
        full = path if os.path.isabs(path) or args.files else os.path.join(
            root, path)
        with open(full, encoding="utf-8", errors="replace") as f:
            findings += check_file(path, f.read(), args.max_file,
                                   args.max_function)
    for line in findings:
        print(line)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
