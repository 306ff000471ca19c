"""Names both ATOL protocols (driver 10 web server and ATOL Online) give to FFD codes."""

from orderdesk.fiscal.codes import Vat

VAT_NAMES = {
    Vat.VAT20: "vat20",
    Vat.VAT10: "vat10",
    Vat.VAT120: "vat120",
    Vat.VAT110: "vat110",
    Vat.VAT0: "vat0",
    Vat.NONE: "none",
    Vat.VAT5: "vat5",
    Vat.VAT7: "vat7",
    Vat.VAT105: "vat105",
    Vat.VAT107: "vat107",
    Vat.VAT22: "vat22",
    Vat.VAT122: "vat122",
}
