"""Kotlin models generated from the published contract compile, and decode the server's JSON.

What a native Android team would do (``docs/native-clients.md``, "Generating models"):
openapi-generator's ``kotlin`` generator, models only, Gson, ``integer`` as ``Long``, run on
``/schema/openapi.json`` as the server serves it. The generated code is compiled with the
Kotlin compiler, with a small program beside it that decodes a push answer encoded by the
server's own Structs, and run: the statuses and codes come back as the contract's enums, and
a mutation id past 2**31 survives. ``scripts/kotlin`` installs the tools into ``var/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.sync import MutationCode, MutationResult, MutationStatus, PushResponse

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "var" / "openapi-generator" / "bin" / "openapi-generator-cli"
KOTLIN = ROOT / "var" / "kotlin" / "node_modules" / "kotlin-compiler"
GSON = Path("/usr/share/java/gson.jar")
PACKAGE = "fi.reppu.contract"
MAIN = """\
import com.google.gson.Gson
import fi.reppu.contract.models.MutationCode
import fi.reppu.contract.models.MutationStatus
import fi.reppu.contract.models.PushResponse

fun main(args: Array<String>) {
    val answer: PushResponse = Gson().fromJson(args[0], PushResponse::class.java)
    for (result in answer.results) {
        val id: Long = result.id
        val status: MutationStatus = result.status
        val code: MutationCode? = result.code
        println("$id ${status.value} ${code?.value} ${result.reason}")
    }
}
"""

pytestmark = pytest.mark.slow


def _tools() -> None:
    missing = [str(p) for p in (GENERATOR, KOTLIN / "bin" / "kotlinc", GSON) if not p.exists()]
    if missing:
        message = f"no {', '.join(missing)}: scripts/kotlin installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: this test must run)")
        pytest.skip(message)


def _published_document() -> dict[str, Any]:
    path = ROOT / "scripts" / "contract_types.py"
    spec = importlib.util.spec_from_file_location("contract_types", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document: dict[str, Any] = module.published_document()
    return document


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    return done.stdout


def test_generated_kotlin_models_compile_and_decode_a_push_answer(tmp_path: Path) -> None:
    _tools()
    (tmp_path / "openapi.json").write_text(json.dumps(_published_document()))
    _run(
        [
            str(GENERATOR),
            "generate",
            "--input-spec", "openapi.json",
            "--generator-name", "kotlin",
            "--output", "generated",
            "--global-property", "models,modelDocs=false,modelTests=false",
            "--additional-properties",
            f"serializationLibrary=gson,packageName={PACKAGE},enumPropertyNaming=UPPERCASE",
            "--type-mappings", "integer=kotlin.Long",
        ],
        tmp_path,
    )  # fmt: skip
    models = sorted((tmp_path / "generated").rglob("*.kt"))
    names = {p.stem for p in models}
    assert {"PullRequest", "PullResponse", "PushRequest", "MutationResult"} <= names
    (tmp_path / "Main.kt").write_text(MAIN)
    _run(
        [
            str(KOTLIN / "bin" / "kotlinc"),
            "-nowarn",
            "-classpath", str(GSON),
            "-d", "classes",
            "Main.kt",
            *(str(p) for p in models),
        ],
        tmp_path,
    )  # fmt: skip
    answer = PushResponse(
        results=[
            MutationResult(id=2**40, status=MutationStatus.APPLIED),
            MutationResult(
                id=3,
                status=MutationStatus.REJECTED,
                code=MutationCode.TOO_LATE,
                reason="Liian myöhään",
                field="$.on_date",
            ),
        ]
    )
    classpath = os.pathsep.join(
        [str(tmp_path / "classes"), str(GSON), str(KOTLIN / "lib" / "kotlin-stdlib.jar")]
    )
    printed = _run(
        ["java", "-classpath", classpath, "MainKt", msgspec.json.encode(answer).decode()],
        tmp_path,
    )
    assert printed.splitlines() == [
        "1099511627776 applied null null",
        "3 rejected mutation.too_late Liian myöhään",
    ]
