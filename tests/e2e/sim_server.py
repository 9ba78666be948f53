"""Run the WeCom simulator (and a tiny bot for its callbacks) under a real uvicorn on
127.0.0.1, in the test's event loop — the pattern of tests/conftest.py `serve_app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response

from app.engine.wecom.crypto import WeComCrypto
from app.engine.wecom.xmlutil import parse_xml
from app.faces.sim import Sim, SimSettings, create_sim_app
from app.faces.sim.access import KEY_HEADER

CORP_ID = "wwsime2ecorp00001"
TOKEN = "simE2eToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET = "sim-e2e-agent-secret"


def sim_settings(**overrides: Any) -> SimSettings:
    values: dict[str, Any] = {"WECOM_CORP_ID": CORP_ID, "WECOM_CALLBACK_TOKEN": TOKEN,
                              "WECOM_CALLBACK_AES_KEY": AES_KEY, "WECOM_AGENT_SECRET": SECRET,
                              "SOPBOT_SIM_CALLBACK_TIMEOUT_S": 0.5, "SOPBOT_SIM_SEED": 1}
    values.update(overrides)
    return SimSettings(_env_file=None, **values)


@asynccontextmanager
async def serve(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` on `port` (0: a free one); yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(1500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class RunningSim:
    base_url: str
    sim: Sim
    client: httpx.AsyncClient

    async def token(self, secret: str = SECRET) -> str:
        answer = await self.client.get("/cgi-bin/gettoken",
                                       params={"corpid": CORP_ID, "corpsecret": secret})
        return answer.json()["access_token"]

    async def call(self, api: str, body: dict[str, Any] | None = None,
                   token: str | None = None, **params: Any) -> dict[str, Any]:
        """POST a WeCom API with JSON and return the JSON answer."""
        if token is not None:
            params["access_token"] = token
        answer = await self.client.post(f"/cgi-bin/{api}", params=params, json=body or {})
        return answer.json()

    async def scenario(self, name: str, /, **body: Any) -> dict[str, Any]:
        answer = await self.client.post(f"/sim/scenarios/{name}", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()


@asynccontextmanager
async def running_sim(**overrides: Any) -> AsyncIterator[RunningSim]:
    app = create_sim_app(sim_settings(**overrides))
    key = {KEY_HEADER: app.state.sim.control_key}  # the local operator's: every test has it
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10,
                                                         trust_env=False, headers=key) as client:
        yield RunningSim(base_url, app.state.sim, client)


@dataclass
class TinyBot:
    """Decrypts what the simulator POSTs; can be slow the first N times, fail, or reply."""

    crypto: WeComCrypto = field(default_factory=lambda: WeComCrypto(TOKEN, AES_KEY, CORP_ID))
    received: list[dict[str, Any]] = field(default_factory=list)
    slow_first: int = 0
    slow_s: float = 0.0
    status: int = 200
    reply: str | None = None  # passive reply text for member messages

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/wecom/callback")
        async def receive(request: Request) -> Response:
            return await self._receive(request)

        @app.get("/wecom/callback")
        async def verify(request: Request) -> Response:
            q = request.query_params
            echo = self.crypto.verify_url(q["msg_signature"], q["timestamp"], q["nonce"],
                                          q["echostr"])
            return Response(echo, media_type="text/plain")

        return app

    async def _receive(self, request: Request) -> Response:
        q = request.query_params
        encrypt = str(parse_xml(await request.body())["Encrypt"])
        plaintext = self.crypto.decrypt_message(q["msg_signature"], q["timestamp"], q["nonce"],
                                                encrypt).decode("utf-8")
        self.received.append({"plaintext": plaintext, "nonce": q["nonce"],
                              "timestamp": q["timestamp"]})
        if len(self.received) <= self.slow_first:
            await asyncio.sleep(self.slow_s)
        if self.reply is not None and parse_xml(plaintext).get("MsgType") == "text":
            return Response(self._passive(plaintext, q["nonce"]), media_type="application/xml")
        return Response("success" if self.status == 200 else "busy", status_code=self.status)

    def _passive(self, plaintext: str, nonce: str) -> str:
        fields = parse_xml(plaintext)
        reply = (f"<xml><ToUserName><![CDATA[{fields['FromUserName']}]]></ToUserName>"
                 f"<FromUserName><![CDATA[{CORP_ID}]]></FromUserName><CreateTime>1</CreateTime>"
                 f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{self.reply}]]>"
                 f"</Content></xml>")
        return self.crypto.encrypt_reply(reply, nonce)

    def events(self) -> list[dict[str, Any]]:
        return [parse_xml(r["plaintext"]) for r in self.received]


@asynccontextmanager
async def running_bot(bot: TinyBot, sim: RunningSim) -> AsyncIterator[TinyBot]:
    """Serve the bot and point the simulator's callbacks at it."""
    async with serve(bot.app()) as base_url:
        sim.sim.callbacks.bot_url = f"{base_url}/wecom/callback"
        yield bot
