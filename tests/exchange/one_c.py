"""A client that behaves as 1C does in the CommerceML «sale» exchange (commerceml.md §1.5 and §9):
Basic credentials at checkauth, the cookie of its answer on every later call, `init` with a
schema version or without, `query` and `success`, files POSTed raw (in chunks when bigger than
`file_limit`), `import` repeated while the answer is `progress`. It checks the shape of every
answer as 1C would, not as our code writes it."""

import base64
import time
from dataclasses import dataclass, field

from django.test import Client
from lxml import etree

STATUS_LINES = ("success", "progress", "failure")


@dataclass
class Answer:
    status: int
    lines: list[str]
    content: bytes
    content_type: str

    @property
    def first(self) -> str:
        return self.lines[0] if self.lines else ""


def decode(content: bytes, content_type: str) -> str:
    charset = content_type.split("charset=")[-1].strip() if "charset=" in content_type else "utf-8"
    return content.decode(charset)


@dataclass
class OneC:
    client: Client
    login: str
    password: str
    cookie: tuple[str, str] | None = None
    file_limit: int = 0
    zip_allowed: bool = False
    path: str = "/exchange/1c"
    answers: list[Answer] = field(default_factory=list)

    def call(self, mode: str, method: str = "get", body: bytes | None = None, basic: bool = False,
             **params) -> Answer:
        query = "&".join(f"{k}={v}" for k, v in {"type": "sale", "mode": mode, **params}.items())
        headers = {}
        if basic:
            token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        if self.cookie:
            self.client.cookies[self.cookie[0]] = self.cookie[1]
        if method == "post":
            response = self.client.post(f"{self.path}?{query}", body or b"", content_type="application/octet-stream",
                                        **headers)
        else:
            response = self.client.get(f"{self.path}?{query}", **headers)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        content_type = response.get("Content-Type", "")
        lines = [] if content.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml") else decode(content, content_type).split("\n")
        answer = Answer(response.status_code, lines, content, content_type)
        self.answers.append(answer)
        assert content, f"{mode}: 1C aborts on an empty answer"
        return answer

    def checkauth(self) -> Answer:
        answer = self.call("checkauth", basic=True)
        if answer.first == "success":
            assert len(answer.lines) >= 3 and answer.lines[1] and answer.lines[2], answer.lines
            self.cookie = (answer.lines[1], answer.lines[2])
        return answer

    def init(self, version: str | None = "2.08") -> Answer:
        answer = self.call("init", **({"version": version} if version else {}))
        settings = dict(line.split("=", 1) for line in answer.lines if "=" in line)
        assert settings.get("zip") in ("yes", "no"), answer.lines
        self.file_limit = int(settings["file_limit"])
        self.zip_allowed = settings["zip"] == "yes"
        return answer

    def query(self) -> etree._Element:
        answer = self.call("query")
        assert answer.status == 200
        declared = etree.fromstring(answer.content.lstrip(b"\xef\xbb\xbf")).getroottree().docinfo.encoding
        header = answer.content_type.split("charset=")[-1].lower()
        assert declared.lower() == header, (declared, header)  # declaration, header and bytes agree
        return etree.fromstring(answer.content.lstrip(b"\xef\xbb\xbf"))

    def success(self) -> Answer:
        return self.call("success")

    def upload(self, filename: str, data: bytes, chunk: int | None = None) -> Answer:
        size = chunk or self.file_limit or len(data)
        answer = None
        for start in range(0, len(data), size):
            answer = self.call("file", method="post", body=data[start:start + size], filename=filename)
            assert answer.first.startswith(STATUS_LINES), answer.lines
            if answer.first != "success":
                return answer
        return answer

    def import_file(self, filename: str) -> Answer:
        for _ in range(100):
            answer = self.call("import", filename=filename)
            if answer.first != "progress":
                return answer
            time.sleep(0.05)  # as 1C's next call comes after a moment, not at once
        raise AssertionError("import kept answering progress")


def documents(root: etree._Element) -> list[etree._Element]:
    return [el for el in root if etree.QName(el).localname == "Документ"]


def text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else (found.text or "")


def requisites(element: etree._Element) -> dict[str, str]:
    return {text(pair, "Наименование"): text(pair, "Значение") or ""
            for pair in element.findall("ЗначенияРеквизитов/ЗначениеРеквизита")}


def order_document(number: str, **requisite_values: str) -> str:
    """One `Документ` as 1C sends it back for our order `number`."""
    pairs = "".join(f"<ЗначениеРеквизита><Наименование>{name}</Наименование><Значение>{value}</Значение>"
                    f"</ЗначениеРеквизита>" for name, value in requisite_values.items())
    return (f"<Документ><Ид>b7e4a1c2-4d5e-11f0-8a3b-{number.zfill(12)}</Ид><Номер>{number}</Номер>"
            "<Дата>2026-03-14</Дата><ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль>"
            "<Валюта>RUB</Валюта><Курс>1</Курс>"
            "<Контрагенты><Контрагент><Наименование>Иван Петров</Наименование><Роль>Покупатель</Роль>"
            "</Контрагент></Контрагенты>"
            f"<ЗначенияРеквизитов>{pairs}</ЗначенияРеквизитов></Документ>")


def commerce_file(*documents: str) -> bytes:
    """A file 1C uploads: UTF-8 with a BOM and 1C's default namespace."""
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.08\" "
            "ДатаФормирования=\"2026-03-15T11:02:40\">"
            f"{''.join(documents)}</КоммерческаяИнформация>").encode("utf-8")


def status_update(number: str, **requisite_values: str) -> bytes:
    """A file 1C uploads for one order."""
    return commerce_file(order_document(number, **requisite_values))
