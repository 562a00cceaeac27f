"""Each class of template error lands on its line (and token), with the sample/variant it
happened in; one failing pair never stops the others."""

from __future__ import annotations

from cutlens.check import formats
from cutlens.check.jinja_tier import jinja_check
from cutlens.template.selection import Selection

from conftest import line_of

HEAD = """\
{#- cutlens
[samples.rowmajor]
X = { dtype = "float32", size = [16, 8] }
Y = { dtype = "float32", size = [16, 8] }
[samples.strided]
X = { dtype = "float32", size = [16, 8], stride = [16, 2] }
Y = { dtype = "float32", size = [16, 8] }
[variants]
v = [1, 2]
-#}
"""


def check(project, name):
    t = project.load(name)
    return jinja_check(t, project.renderer, Selection())


def only(jc):
    errs = [d for d in jc.diagnostics if d.severity == "error"]
    assert len(errs) == 1, formats.text(jc.diagnostics)
    return errs[0]


def test_syntax_error(project):
    src = HEAD + "int a;\n{% if v %}\nint b;\n{% endfor %}\n"
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.line == line_of(src, "{% endfor %}")
    assert d.code == "syntax" and "endfor" in d.message
    assert d.source == "jinja"


def test_syntax_error_in_included_template(project):
    project.write("part.cuh.jinja", "// ok\n{{ 1 + }}\n")
    src = HEAD + '{% include "part.cuh.jinja" %}\n'
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.file.endswith("part.cuh.jinja") and d.line == 2


def test_undefined_variable_has_the_token_range(project):
    src = HEAD + "int a = {{ v }};\nint b = {{ tile_m }};\n"
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    ln = line_of(src, "tile_m")
    assert (d.line, d.column, d.end_column) == (ln, 12, 18)
    assert d.message == "'tile_m' is undefined"
    assert not d.partial  # every sample and variant


def test_bad_toml_in_front_matter_is_on_its_line(project):
    src = "{#- cutlens\n[samples.a]\nX = { dtype = \"float32\", size = [4] }\nY = [1,\n-#}\nx\n"
    project.write("t.cu.jinja", src)
    jc = check(project, "t.cu.jinja")
    d = only(jc)
    assert d.line in (4, 5) and d.message.startswith("front matter:")
    assert d.code == "front-matter"


def test_unknown_dtype_on_the_node_line(project):
    src = HEAD.replace('Y = { dtype = "float32", size = [16, 8] }\n[variants]',
                       'Y = { dtype = "float33", size = [16, 8] }\n[variants]')
    project.write("t.cu.jinja", src + "int x;\n")
    jc = check(project, "t.cu.jinja")
    d = only(jc)
    assert d.line == line_of(src, "float33")
    assert "unknown dtype 'float33'" in d.message


def test_hook_exception_only_in_one_sample(project):
    src = HEAD + ('{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {}\n'
                  "int lda = {{ kernel.row_or_column_stride(X) }};\n")
    project.write("t.cu.jinja", src)
    jc = check(project, "t.cu.jinja")
    d = only(jc)
    ln = line_of(src, "row_or_column_stride")
    assert d.line == ln
    assert d.column == src.splitlines()[ln - 1].index("row_or_column_stride") + 1
    assert d.message.startswith("kernel.row_or_column_stride(): At least 1 stride should be 1")
    assert d.samples == ["strided"] and d.partial
    assert "[strided/v=1,v=2]" in formats.text(jc.diagnostics)
    # the other sample rendered fine
    assert {u.sample.name for u in jc.units} == {"rowmajor"}


def test_error_only_in_one_variant_names_it(project):
    src = HEAD + "{% if v == 2 %}{{ undefined_thing }}{% endif %}\n"
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.variants == ["v=2"] and d.partial
    assert d.samples == ["rowmajor", "strided"]


def test_error_in_macro_names_call_site(project):
    project.write("m.cuh.jinja", "{% macro f() %}\nint y = {{ missing }};\n{% endmacro %}\n")
    src = HEAD + '{% import "m.cuh.jinja" as m %}\n{{ m.f() }}\n'
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.file.endswith("m.cuh.jinja") and d.line == 2
    assert [(r.file.rsplit("/", 1)[-1], r.line) for r in d.related] == [
        ("t.cu.jinja", line_of(src, "m.f()"))]


def test_include_not_found(project):
    src = HEAD + '{% include "nope.cuh.jinja" %}\n'
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.line == line_of(src, "nope.cuh")
    assert d.message == "template not found: nope.cuh.jinja"


def test_exception_in_project_helper_points_at_python_too(project):
    project.write("helpers.py", "from cutlens.render.hooks import TemplateContext\n"
                                "class T(TemplateContext):\n"
                                "    def boom(self):\n"
                                "        raise ValueError('bad tile')\n")
    src = HEAD.replace("[variants]", 'template_class = "helpers:T"\n[variants]', 1)
    # template_class must be top-level: put it before the first table
    src = "{#- cutlens\ntemplate_class = \"helpers:T\"\n" + HEAD.split("\n", 1)[1]
    src += "{{ template.boom() }}\n"
    project.write("t.cu.jinja", src)
    d = only(check(project, "t.cu.jinja"))
    assert d.line == line_of(src, "template.boom")
    assert "bad tile" in d.message
    assert any(r.file.endswith("helpers.py") and r.line == 4 for r in d.related)


def test_generator_variants_and_errors(project):
    project.write("gen.py", "def variants(sample=None, limit=3):\n"
                            "    return [{'block': b} for b in (64, 128, 256, 512)][:limit]\n"
                            "def broken():\n    raise RuntimeError('no ops')\n")
    project.write("g.cu.jinja", "{#- cutlens\n[variants]\ngenerator = \"gen:variants\"\n"
                                "generator_args = { limit = 2 }\n-#}\nint b = {{ block }};\n")
    t = project.load("g.cu.jinja")
    assert [v.name for v in t.variants(None)] == ["block=64", "block=128"]
    project.write("h.cu.jinja", "{#- cutlens\n[variants]\n\ngenerator = \"gen:broken\"\n-#}\nx\n")
    d = only(check(project, "h.cu.jinja"))
    assert d.line == 4 and "no ops" in d.message


def test_skip_if_error(project):
    project.write("s.cu.jinja", "{#- cutlens\n[variants]\nv = [1]\nskip_if = \"w > 1\"\n-#}\n")
    d = only(check(project, "s.cu.jinja"))
    assert d.line == 4 and "skip_if" in d.message


def test_missing_hint_warns(project):
    project.write("t.cu.jinja", "{#- cutlens\n[samples.a]\nX = { dtype = \"float32\", "
                                "size = [\"M\"] }\n-#}\n{{ X.get_size() }}\n")
    jc = check(project, "t.cu.jinja")
    w = [d for d in jc.diagnostics if d.severity == "warning"]
    assert any("no hint for size symbol(s) M" in d.message for d in w)


def test_a_hook_that_quietly_renders_its_default_warns_on_its_line(project):
    """Inductor's hooks render 0 for an index past the node's rank: without an explicit
    default_value that is probably a mistake, so it is a warning on the template line."""
    src = HEAD + ("int s = {{ kernel.stride(X, -3) }};\n"
                  "int t = {{ kernel.size(X, 2) }};\n"
                  "int u = {{ kernel.stride(X, -3, default_value=0) }};\n"
                  "int v = {{ kernel.size(Y, 0, -3, default_value=1) }};\n")
    project.write("t.cu.jinja", src)
    jc = check(project, "t.cu.jinja")
    warn = [d for d in jc.diagnostics if d.code == "hook-default"]
    assert [(d.line, d.severity) for d in warn] == [(line_of(src, "int s ="), "warning"),
                                                    (line_of(src, "int t ="), "warning")]
    assert warn[0].message == ("kernel.stride(): index -3 is outside X's 2 dims: renders the "
                               "default 0 (as Inductor does)")
    assert "int s = 0;" in jc.units[0].text and "int v = 1;" in jc.units[0].text
