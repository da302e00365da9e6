#!/usr/bin/env python3
"""Translates kernels/*.cu into plain C++ that runs on the CPU (tools/cuda_emulation).

Usage: generate.py BUILD_DIR [FAMILY ...]     (families: see FAMILIES; default all)

For each kernel file of the chosen families it writes BUILD_DIR/generated/<name>.cpp and copies
the kernel-local headers (*.cuh) beside it. Only three things change; the rest of the source is
compiled as written, against the CPU stand-ins in shims/:
  kernel<<<grid, block, shared, stream>>>(args);  ->  emu_launch(grid, block, [&] { kernel(args); });
  asm("cvt.rna.tf32.f32 ...": "=r"(out) : "f"(in)) ->  out = emu_cvt_rna_tf32(in);
  asm volatile("mma.sync.aligned.m16n8k8...tf32" with d, a, b) -> emu_mma_m16n8k8_tf32(d, a, b);
                                          (m16n8k16 bf16 likewise)
Anything it cannot translate (another asm statement, a launch it cannot parse) stops it with a
message naming the file. Files are rewritten only when their text changes, so run.sh's
timestamp checks recompile only what changed. Python standard library only.
"""
import pathlib
import re
import sys

# Each family: the kernel files (kernels/<name>.cu) its harness links.
FAMILIES = {
    "conv2d": ["conv2d_direct", "conv2d_implicit_gemm", "conv2d_tensor_core", "conv2d_bias"],
    "gemm": ["gemm_simt", "gemm_vectorized", "gemm_warp_tiled", "gemm_tensor_core", "gemm_support"],
    "memory_bound": ["elementwise", "reduction", "sgd", "batch_norm", "batch_norm_v2", "pooling",
                     "softmax_cross_entropy"],
}

KERNELS_DIR = pathlib.Path(__file__).resolve().parents[2] / "kernels"


class TranslationError(Exception):
    pass


def split_top_level(text):
    """Splits 'a, f(b, c), d' at the commas outside any brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def translate_tf32_conversions(source):
    pattern = r'asm\(\s*"cvt\.rna\.tf32\.f32 %0, %1;"\s*:\s*"=r"\((\w+)\)\s*:\s*"f"\((\w+)\)\s*\);'
    return re.sub(pattern, r"\1 = emu_cvt_rna_tf32(\2);", source)


def translate_mma(source, file_name):
    def replace(match):
        body = match.group(1)
        outputs = list(dict.fromkeys(re.findall(r'"\+f"\((\w+)\[', body)))
        inputs = list(dict.fromkeys(re.findall(r'"r"\((\w+)\[', body)))
        if "m16n8k8.row.col.f32.tf32.tf32.f32" in body:
            function = "emu_mma_m16n8k8_tf32"
        elif "m16n8k16.row.col.f32.bf16.bf16.f32" in body:
            function = "emu_mma_m16n8k16_bf16"
        else:
            raise TranslationError(f"{file_name}: an mma.sync shape/type the emulation does not know")
        if len(outputs) != 1 or len(inputs) != 2:
            raise TranslationError(f"{file_name}: mma.sync operands are not (d[4], a[4], b[2]) arrays")
        return f"{function}({outputs[0]}, {inputs[0]}, {inputs[1]});"

    return re.sub(r'asm volatile\(\s*("mma\.sync\.aligned.*?)\);', replace, source, flags=re.S)


def translate_launches(source, file_name):
    """kernel<<<grid, block[, shared, stream]>>>(args);  ->  emu_launch(grid, block, [&] { kernel(args); });"""
    out, position = "", 0
    for match in re.finditer(r"<<<(.*?)>>>\((.*?)\);", source, flags=re.S):
        # The kernel expression runs from the start of the statement to the '<<<'.
        start = max(source.rfind(";", 0, match.start()), source.rfind("{", 0, match.start()),
                    source.rfind("}", 0, match.start())) + 1
        prefix_text = source[start:match.start()]
        comments = "".join(re.findall(r"//[^\n]*\n", prefix_text))
        kernel = re.sub(r"//[^\n]*", "", prefix_text).strip()
        if not re.fullmatch(r"[\w:]+(\s*<[^;{}()]*>)?", kernel):
            line = source.count("\n", 0, match.start()) + 1
            raise TranslationError(f"{file_name}:{line}: cannot parse the launched kernel '{kernel}' "
                                   "(write the launch as its own statement)")
        config = split_top_level(match.group(1))
        # Keep the line count, so compiler messages (via #line) point at the kernel file's lines.
        padding = "\n" * (prefix_text.count("\n") - comments.count("\n"))
        out += source[position:start] + comments + padding
        out += f"    emu_launch({config[0]}, {config[1]}, [&] {{ {kernel}({match.group(2)}); }});"
        position = match.end()
    return out + source[position:]


def translate(path):
    source = path.read_text()
    source = translate_tf32_conversions(source)
    source = translate_mma(source, path.name)
    source = translate_launches(source, path.name)
    if re.search(r"\basm\b", source):
        line = source[:re.search(r"\basm\b", source).start()].count("\n") + 1
        raise TranslationError(f"{path.name}:{line}: inline PTX the emulation does not translate")
    if "<<<" in source:
        raise TranslationError(f"{path.name}: a kernel launch was left untranslated")
    header = f"// Generated by tools/cuda_emulation/generate.py from kernels/{path.name}; do not edit.\n"
    return header + f'#line 1 "{path}"\n' + source


def write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def main(argv):
    if len(argv) < 2:
        sys.exit(f"usage: {argv[0]} BUILD_DIR [{' '.join(FAMILIES)}]")
    out_dir = pathlib.Path(argv[1]).resolve() / "generated"
    if KERNELS_DIR in out_dir.parents or out_dir == KERNELS_DIR:
        sys.exit("generate.py: the build folder must be outside kernels/")
    families = argv[2:] or list(FAMILIES)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for family in families:
            if family not in FAMILIES:
                sys.exit(f"generate.py: unknown family '{family}' (known: {', '.join(FAMILIES)})")
            for name in FAMILIES[family]:
                source_path = KERNELS_DIR / f"{name}.cu"
                for header in re.findall(r'#include "(\w+\.cuh)"', source_path.read_text()):
                    write_if_changed(out_dir / header, (KERNELS_DIR / header).read_text())
                write_if_changed(out_dir / f"{name}.cpp", translate(source_path))
    except TranslationError as error:
        sys.exit(f"generate.py: {error}")


if __name__ == "__main__":
    main(sys.argv)
