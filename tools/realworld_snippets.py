"""Turn trafilatura's tests/realworld_tests.py into tests/data/realworld_snippets.json.

trafilatura (Apache-2.0) asserts, for each page of its test cache (= ../shared/corpus/pages),
snippets that must and must not be in the extracted text. We keep only those assertions
(page file, snippet, wanted or not), for the plain-text output (xmloutput=False,
formatting=False), so tests/test_realworld_extraction.py can hold the pipeline to them
without the corpus or trafilatura's test file in the repository.

    git --git-dir=<trafilatura>/.git show HEAD:tests/realworld_tests.py > /tmp/rw.py
    python tools/realworld_snippets.py /tmp/rw.py <commit> > tests/data/realworld_snippets.json
"""

from __future__ import annotations

import ast
import json
import sys

CONTEXT = {"xmloutput": False, "formatting": False}


def _truth(test: ast.expr) -> bool:
    """Evaluate an `if` guard of test_extract for plain-text output."""
    return bool(eval(compile(ast.Expression(test), "<guard>", "eval"), {}, dict(CONTEXT)))


def _walk(body, pages, state, out):
    for node in body:
        if isinstance(node, ast.If):
            _walk(node.body if _truth(node.test) else node.orelse, pages, state, out)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", "") == "do_load_page":
            state["page"] = pages[ast.literal_eval(node.value.args[0])]
        elif isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) \
                and isinstance(node.test.left, ast.Constant) and isinstance(node.test.left.value, str):
            op = node.test.ops[0]
            if isinstance(op, (ast.In, ast.NotIn)) and getattr(node.test.comparators[0], "id", "") == "result":
                out.append({"page": state["page"], "snippet": node.test.left.value,
                            "wanted": isinstance(op, ast.In)})


def main(path: str, commit: str) -> None:
    tree = ast.parse(open(path, encoding="utf-8").read())
    pages = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "MOCK_PAGES")
    test = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "test_extract")
    out: list[dict] = []
    _walk(test.body, pages, {}, out)
    json.dump({"source": "https://github.com/adbar/trafilatura tests/realworld_tests.py (Apache-2.0)",
               "commit": commit, "assertions": out}, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
