#!/usr/bin/env python3
"""Tests of size_check.py's scanner.

Run with `python3 -m pytest tests/tools` or `python3 tests/tools/size_check_test.py`.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import size_check  # noqa: E402


def body(n, indent="  "):
    """n lines of statements."""
    return "".join(f"{indent}x += {i};\n" for i in range(n))


def names(text):
    return [(name, last - first + 1)
            for name, first, last in size_check.find_functions(text)]


def test_catches_a_long_function():
    text = ("namespace a {\n"
            "int Long(int x) {\n" + body(130) + "  return x;\n}\n"
            "int Short(int x) { return x; }\n"
            "}  // namespace a\n")
    assert names(text) == [("Long", 133), ("Short", 1)]
    findings = size_check.check_file("a.cc", text)
    assert findings == ["a.cc:2: function Long is 133 lines (max 120)"]


def test_catches_a_long_file():
    text = "".join(f"int v{i} = {i};\n" for i in range(801))
    assert size_check.check_file("big.h", text) == [
        "big.h:1: file is 801 lines (max 800)"]
    assert size_check.check_file("ok.h", text[:text.index("int v800")]) == []


def test_ignores_long_class_and_namespace_bodies():
    methods = "".join(f"  int M{i}() const {{ return {i}; }}\n"
                      for i in range(150))
    text = ("namespace outer {\nnamespace {\n"
            "class Big : public Base {\n public:\n" + methods + "};\n"
            "struct S {\n" + "".join(f"  int f{i} = {i};\n"
                                     for i in range(150)) + "};\n"
            "enum class E : int {\n" + "".join(f"  k{i},\n"
                                             for i in range(150)) + "};\n"
            "}  // namespace\n}  // namespace outer\n")
    assert size_check.check_file("c.h", text) == []
    found = names(text)
    assert len(found) == 150 and all(n == 1 for _, n in found)


def test_lambdas_and_local_classes_count_for_their_function():
    text = ("void Outer() {\n"
            "  auto f = [&](int y) {\n" + body(60, "    ") + "  };\n"
            "  struct Local { int Get() { return 1; } };\n" + body(60) +
            "}\n")
    assert names(text) == [("Outer", 125)]
    assert size_check.check_file("l.cc", text) == [
        "l.cc:1: function Outer is 125 lines (max 120)"]


def test_member_functions_out_of_class_and_signatures_over_lines():
    text = ("absl::StatusOr<std::vector<int>> Foo::Bar(\n"
            "    int a, const std::function<bool()>& f) const {\n" +
            body(119) + "}\n")
    assert names(text) == [("Foo::Bar", 122)]


def test_constructor_init_lists_with_braces():
    text = ("Foo::Foo(int a)\n    : a_(a), b_{a, 2}, c_{} {\n" + body(3) +
            "}\n")
    assert names(text) == [("Foo::Foo", 6)]


def test_braces_in_comments_strings_and_macros_are_ignored():
    text = ("// void NotAFunction() {\n"
            "/* { { { */\n"
            "#define OPEN {\n"
            "const char* kText = \"{ not a block\";\n"
            "const char kBrace = '{';\n"
            "const char* kRaw = R\"x(\n} {\n)x\";\n"
            "int kArr[] = {1, 2, 3};\n"
            "void Real() {\n  return;\n}\n")
    assert names(text) == [("Real", 3)]


def test_default_argument_braces_and_templates():
    text = ("class C {\n"
            "  template <typename Fn>\n"
            "  int Call(Fn fn, const std::function<bool()>& g = {}) {\n" +
            body(2, "    ") + "    return 0;\n  }\n"
            "  int v_ ABSL_GUARDED_BY(mu_) = 0;\n"
            "};\n"
            "template <class T> void Tmpl(T t) {\n}\n")
    assert names(text) == [("Call", 6), ("Tmpl", 2)]  # with template <>


def test_test_files_do_not_count():
    for path in ("dlm/dlm_test.cc", "mds/core_test_util.h",
                 "fuse-client/fake_mds.h", "dlm/dlm_bench.cc",
                 "tests/tools/datatest.cc"):
        assert size_check.is_test_file(path), path
    for path in ("dlm/dlm_client.cc", "mds/main.cc", "cli/layout.h"):
        assert not size_check.is_test_file(path), path


def test_main_exit_codes():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "cli"))
        # A source directory is one with a CMakeLists.txt.
        open(os.path.join(root, "cli", "CMakeLists.txt"), "w").close()
        good = os.path.join(root, "cli", "good.cc")
        with open(good, "w") as f:
            f.write("int F() {\n  return 1;\n}\n")
        assert size_check.main(["--root", root]) == 0
        long_test = os.path.join(root, "cli", "long_test.cc")
        with open(long_test, "w") as f:
            f.write("void T() {\n" + body(200) + "}\n")
        assert size_check.main(["--root", root]) == 0  # a test: not checked
        bad = os.path.join(root, "cli", "bad.cc")
        with open(bad, "w") as f:
            f.write("void B() {\n" + body(200) + "}\n")
        assert size_check.main(["--root", root]) == 1


if __name__ == "__main__":
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"ok   {name}")
            except AssertionError as e:
                failed += 1
                print(f"FAIL {name}: {e!r}")
    sys.exit(1 if failed else 0)
