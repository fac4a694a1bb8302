#!/usr/bin/env python3
"""Checks every #include line under proxy/ against the module graph.

    scripts/check-includes.py [ROOT]

The graph is the block of proxy_graph(...) rows in the top CMakeLists.txt, the one
statement of which module may use which (docs/architecture.md, "Module graph"). A file
in proxy/<module>/ (proxy/http/http2/ is the module http2) may include:
  - headers of its own module, and of the modules its row names after USES;
  - the headers of the third-party libraries its row names after LIBS (<uv.h> only with
    PkgConfig::UV, <openssl/...> only with boringssl_ssl, and so on);
  - anything else that is not ours and not one of those libraries (the C and C++
    standard libraries, POSIX headers).
The build enforces the same graph where CMake can (each module sees only the headers
of the modules it may reach); this check also covers what CMake cannot: <uv.h> sits in
/usr/include for everyone, and a module reachable only through another's headers must
not be included directly. Prints one line per forbidden include and exits 1 when there
is any. First it runs itself on a small tree with known violations
(self_test), so a checker broken into passing everything fails as well. Debian's
python3 alone, no packages.
"""
import pathlib
import re
import sys
import tempfile

# Header paths each third-party target of the graph provides.
LIBRARY_HEADERS = {
    "PkgConfig::UV": re.compile(r"^uv\.h$|^uv/"),
    "PkgConfig::NGHTTP2": re.compile(r"^nghttp2/"),
    "llhttp": re.compile(r"^llhttp\.h$"),
    "boringssl_ssl": re.compile(r"^openssl/"),
    "tomlplusplus::tomlplusplus": re.compile(r"^toml\+\+/"),
    "yaml-cpp": re.compile(r"^yaml-cpp/"),
    "Threads::Threads": None,  # <thread> and <pthread.h> are the C and C++ libraries'
}
ROW = re.compile(r"^proxy_graph\(([^)]*)\)\s*(#.*)?$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SOURCE_SUFFIXES = {".h", ".cc", ".in"}


def read_graph(cmakelists):
    """Returns {module: (set of modules it uses, set of libraries)} from the rows."""
    graph = {}
    for number, line in enumerate(cmakelists.read_text().splitlines(), 1):
        if not line.startswith("proxy_graph("):
            continue
        match = ROW.match(line)
        if not match:
            sys.exit(f"{cmakelists}:{number}: a proxy_graph row must be one line: {line}")
        words = match.group(1).split()
        module, uses, libs, current = words[0], set(), set(), None
        for word in words[1:]:
            if word in ("USES", "LIBS"):
                current = uses if word == "USES" else libs
            elif current is None:
                sys.exit(f"{cmakelists}:{number}: expected USES or LIBS before '{word}'")
            else:
                current.add(word)
        unknown = libs - LIBRARY_HEADERS.keys()
        if unknown:
            sys.exit(f"{cmakelists}:{number}: teach {sys.argv[0]} the headers of {sorted(unknown)}")
        graph[module] = (uses, libs)
    for module, (uses, _) in graph.items():
        for used in uses - graph.keys():
            sys.exit(f"{cmakelists}: '{module}' uses '{used}', which has no proxy_graph row")
    if not graph:
        sys.exit(f"{cmakelists}: no proxy_graph rows found")
    return graph


def module_of(relative):
    """The module a path under proxy/ belongs to, e.g. proxy/http/http2/x.h -> http2."""
    parts = relative.parts
    if len(parts) < 3 or parts[0] != "proxy":
        return None
    if parts[1] == "http" and len(parts) >= 4 and parts[2] == "http2":
        return "http2"
    return parts[1]


def check_file(path, relative, module, graph):
    uses, libs = graph[module]
    problems = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = INCLUDE.match(line)
        if not match:
            continue
        header = match.group(2)
        where = f"{relative}:{number}: {module} includes {header}"
        if header.startswith("proxy/"):
            target = module_of(pathlib.PurePosixPath(header))
            if target not in graph:
                problems.append(f"{where}, a module with no proxy_graph row")
            elif target != module and target not in uses:
                problems.append(f"{where}, but the graph lets it use only: {sorted(uses)}")
        elif header.startswith("tests/"):
            problems.append(f"{where}: proxy/ code never includes tests/")
        else:
            for library, pattern in LIBRARY_HEADERS.items():
                if pattern and pattern.search(header) and library not in libs:
                    problems.append(f"{where}, but its graph row has no LIBS {library}")
    return problems


def check_tree(root):
    """Returns (files checked, forbidden includes) for the tree at `root`."""
    graph = read_graph(root / "CMakeLists.txt")
    problems, checked = [], 0
    for path in sorted((root / "proxy").rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        relative = path.relative_to(root)
        module = module_of(relative)
        if module is None:
            problems.append(f"{relative}: proxy/ sources live in a module's folder")
            continue
        if module not in graph:
            problems.append(f"{relative}: module '{module}' has no proxy_graph row in CMakeLists.txt")
            continue
        checked += 1
        problems.extend(check_file(path, relative, module, graph))
    return checked, problems


def self_test():
    """The checker on a small tree with known edges, so that a checker that lets
    everything through fails too. Returns a list of what went wrong."""
    files = {
        "CMakeLists.txt": "proxy_graph(common)\n"
                          "proxy_graph(http       USES common  LIBS llhttp)\n"
                          "proxy_graph(upstream   USES http common LIBS PkgConfig::UV)\n"
                          "proxy_graph(downstream USES upstream common)\n",
        "proxy/common/a.h": '#include <vector>\n',
        "proxy/http/b.h": '#include <llhttp.h>\n#include "proxy/common/a.h"\n',
        "proxy/http/http2/c.h": '#include "proxy/http/b.h"\n',  # no row for http2
        "proxy/upstream/d.cc": '#include <uv.h>\n#include "proxy/http/b.h"\n'
                               '#include "proxy/downstream/e.h"\n',  # upstream -> downstream
        "proxy/downstream/e.h": '#include "proxy/upstream/d.h"\n#include <uv.h>\n'
                                '#include "proxy/http/b.h"\n',  # no LIBS UV; http not direct
        "proxy/common/f.cc": '  #  include "tests/x.h"\n',
    }
    expected = [
        "proxy/common/f.cc:1: common includes tests/x.h",
        "proxy/downstream/e.h:2: downstream includes uv.h",
        "proxy/downstream/e.h:3: downstream includes proxy/http/b.h",
        "proxy/http/http2/c.h: module 'http2' has no proxy_graph row",
        "proxy/upstream/d.cc:3: upstream includes proxy/downstream/e.h",
    ]
    with tempfile.TemporaryDirectory() as temp:
        root = pathlib.Path(temp)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        checked, problems = check_tree(root)
    failures = []
    if checked != 5:
        failures.append(f"self-test: {checked} files checked, expected 5")
    if len(problems) != len(expected):
        failures.append(f"self-test: {len(problems)} problems, expected {len(expected)}: {problems}")
    for want in expected:
        if not any(p.startswith(want) for p in problems):
            failures.append(f"self-test: missed '{want}'")
    return failures


def main():
    failures = self_test()
    for failure in failures:
        print(failure)
    if failures:
        return 1
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    checked, problems = check_tree(root)
    for problem in problems:
        print(problem)
    print(f"check-includes: {checked} files, {len(problems)} forbidden includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
