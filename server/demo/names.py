"""Name pools for the demo city: Finnish, Swedish and immigrant families, places and streets.

Children and parents get different Finnish and Swedish pools because names follow
generations (an Aino born in 2017 has a mother called Johanna, not another Aino). The
immigrant pools cover the largest foreign-language groups in the capital region's schools.
All tuples, so that the pools are immutable and their order (and so every draw from a seeded
generator) is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NamePool:
    """Names of one language group: given names of girls and boys per generation, family names."""

    girls: tuple[str, ...]
    boys: tuple[str, ...]
    women: tuple[str, ...]
    men: tuple[str, ...]
    families: tuple[str, ...]


def _names(text: str) -> tuple[str, ...]:
    """A pool written as one string of space-separated names, in a fixed order."""
    return tuple(text.split())


FINNISH = NamePool(
    girls=_names(
        "Aino Eevi Helmi Olivia Sofia Ella Lilja Venla Isla Aada Pihla Emma Enni Hilla Iida "
        "Kerttu Lumi Minea Nella Siiri Vilja Alma Elli Seela Oona Inka Viivi Selma Hertta Jenna"
    ),
    boys=_names(
        "Leo Eino Väinö Oliver Elias Onni Eeli Veeti Niilo Toivo Aapo Eetu Joel Lenni Luka Otto "
        "Akseli Emil Topias Aaro Valtteri Rasmus Iivari Kasper Nooa Viljami Aatos Aleksi Matias"
    ),
    women=_names(
        "Laura Jenni Anna Johanna Katja Maria Sanna Heidi Elina Tiina Riikka Satu Minna Hanna "
        "Susanna Kaisa Paula Noora Anu Mari Suvi Piia Jaana Outi Essi Henna Milla Tanja"
    ),
    men=_names(
        "Mikko Jukka Antti Juha Janne Tuomas Ville Sami Markus Petri Timo Jari Teemu Lauri Marko "
        "Tommi Jussi Pekka Olli Heikki Joni Kalle Tero Matti Ari Harri Vesa Risto"
    ),
    families=_names(
        "Korhonen Virtanen Mäkinen Nieminen Mäkelä Hämäläinen Laine Heikkinen Koskinen Järvinen "
        "Lehtonen Lehtinen Saarinen Salminen Heinonen Niemi Heikkilä Kinnunen Salonen Turunen "
        "Salo Laitinen Tuominen Rantanen Karjalainen Jokinen Mattila Savolainen Lahtinen Ahonen "
        "Hiltunen Kärkkäinen Manninen Anttila Väisänen Laaksonen Hakala Peltonen Miettinen "
        "Aaltonen Lindqvist Koivisto Leinonen Pitkänen Räsänen Lappalainen Ojala Kettunen Seppälä "
        "Hirvonen Kallio Kauppinen Toivonen Nurmi Huttunen Hyvönen Rautiainen Pesonen Honkanen "
        "Vainio Söderholm Kemppainen Hännikäinen Soini"
    ),
)

SWEDISH = NamePool(
    girls=_names(
        "Ebba Alva Elsa Saga Wilma Ella Stella Ellen Ida Alice Linnea Vera Selma Ester Signe Nora "
        "Tyra Agnes"
    ),
    boys=_names(
        "Elias Leo Oscar William Hugo Anton Axel Viktor Edvin Isak Theo Alfred Emil Melvin Sixten "
        "Lucas Alvar Nils"
    ),
    women=_names(
        "Johanna Sofia Anna Malin Camilla Jenny Emma Karin Linda Sara Annika Petra Frida Helena "
        "Mia Lotta"
    ),
    men=_names(
        "Johan Mikael Fredrik Andreas Daniel Patrik Henrik Jonas Mattias Christoffer Niklas "
        "Tobias Kristian Robert Magnus Stefan"
    ),
    families=_names(
        "Lindholm Nyberg Holmström Lindberg Forsström Sundström Backman Karlsson Johansson "
        "Eriksson Lindström Nyström Grönroos Wikström Åberg Ekholm Björkqvist Westerlund Sjöberg "
        "Strandberg Lundqvist Blomqvist Öhman Fagerström Granqvist Mattsson Wickström Enqvist"
    ),
)

# The immigrant groups: pupils' ISO 639-1 mother tongue and their weight among the
# foreign-language pupils (shares in the capital region's schools, rounded).
IMMIGRANT: dict[str, tuple[int, NamePool]] = {
    "ru": (
        22,
        NamePool(
            girls=_names("Anastasia Sofia Alisa Polina Daria Viktoria Milana"),
            boys=_names("Artjom Maksim Ivan Daniil Mikhail Kirill Matvei"),
            women=_names("Olga Jelena Natalia Tatjana Svetlana Irina Julia"),
            men=_names("Aleksei Sergei Dmitri Andrei Vladimir Igor Pavel"),
            families=_names("Ivanov Smirnov Kuznetsov Popov Volkov Sokolov Orlov"),
        ),
    ),
    "so": (
        15,
        NamePool(
            girls=_names("Hodan Ayaan Ikran Sagal Hamdi Nasra Ifrah"),
            boys=_names("Abdirahman Liban Mahad Yusuf Guled Abdullahi Khalid"),
            women=_names("Fadumo Amina Halima Sahra Hawa Maryan Asha"),
            men=_names("Abdi Mohamed Ahmed Hassan Farah Omar Ismail"),
            families=_names("Mohamed Ali Hassan Abdi Farah Warsame Jama Osman"),
        ),
    ),
    "ar": (
        15,
        NamePool(
            girls=_names("Maryam Fatima Zainab Noor Layla Hiba Rawan"),
            boys=_names("Ali Adam Yousef Omar Hamza Karim Zaid"),
            women=_names("Rana Hanan Samira Lina Dalia Huda Salma"),
            men=_names("Ahmad Mahmoud Hussein Khaled Mustafa Tariq Samir"),
            families=_names("Al-Sayed Haddad Khalil Nasser Saleh Hamdan Aziz"),
        ),
    ),
    "et": (
        12,
        NamePool(
            girls=_names("Mia Sofia Eliise Lenna Marta Emma Hanna"),
            boys=_names("Rasmus Oskar Robin Sebastian Kristjan Markus Romet"),
            women=_names("Kadri Kristiina Liis Maarja Triin Pille Kaja"),
            men=_names("Andres Tarmo Margus Priit Rein Indrek Meelis"),
            families=_names("Tamm Saar Sepp Mägi Kask Kukk Rebane Ilves"),
        ),
    ),
    "en": (
        7,
        NamePool(
            girls=_names("Olivia Amelia Grace Chloe Lily"),
            boys=_names("Jack Harry Oliver Noah James"),
            women=_names("Sarah Emily Rebecca Jessica Kate"),
            men=_names("David Michael Richard Thomas Paul"),
            families=_names("Smith Jones Williams Brown Taylor Wilson"),
        ),
    ),
    "ku": (
        6,
        NamePool(
            girls=_names("Rojin Berfin Dilan Helin Zozan"),
            boys=_names("Baran Rojhat Azad Aram Serhat"),
            women=_names("Zeynep Nesrin Gulistan Berivan Shirin"),
            men=_names("Rebwar Sherzad Kawa Dara Hiwa"),
            families=_names("Ahmadi Barzani Karimi Rashid Mahmud"),
        ),
    ),
    "fa": (
        6,
        NamePool(
            girls=_names("Yasmin Parisa Nazanin Setareh Ava"),
            boys=_names("Arman Kian Reza Amir Dariush"),
            women=_names("Maryam Fereshteh Nasrin Leila Shirin"),
            men=_names("Hossein Mehdi Ali Farhad Babak"),
            families=_names("Hosseini Rezaei Mohammadi Ahmadi Jafari Karimi"),
        ),
    ),
    "sq": (
        6,
        NamePool(
            girls=_names("Ariana Elira Dea Besa Jora"),
            boys=_names("Arber Dren Leart Ilir Alban"),
            women=_names("Valbona Drita Mimoza Shpresa Teuta"),
            men=_names("Agron Besnik Fatmir Gezim Ylli"),
            families=_names("Krasniqi Gashi Berisha Morina Hoxha Shala"),
        ),
    ),
    "vi": (
        6,
        NamePool(
            girls=_names("Linh Mai Ngoc Thao Vy"),
            boys=_names("Minh Duc Khoa Bao Huy"),
            women=_names("Lan Huong Hoa Thu Trang"),
            men=_names("Tuan Hung Quang Dung Long"),
            families=_names("Nguyen Tran Le Pham Hoang Vu"),
        ),
    ),
    "zh": (
        5,
        NamePool(
            girls=_names("Yuxin Zihan Xinyi Yutong Ruoxi"),
            boys=_names("Haoran Yichen Zihao Junjie Yuhang"),
            women=_names("Li Jing Xiaoyan Hui Ying"),
            men=_names("Wei Jun Lei Qiang Hao"),
            families=_names("Wang Li Zhang Liu Chen Yang"),
        ),
    ),
}

# Place names: a first part and a genitive ending combine into a neighbourhood name
# ("Koivumäen koulu", "Koivumäentie"); the Swedish parts likewise ("Björkby skola").
FI_PLACE_HEADS = _names(
    "Koivu Kuusi Mänty Pihlaja Haka Kivi Lähde Tammi Vaahtera Lehmus Pähkinä Leppä Kataja Saarni "
    "Kallio Ranta Järvi Metsä Niitty Päivä Kuu Tähti Myyr Hieta Kanerva Kulo Louhi Mansikka "
    "Mustikka Puolukka Rasti Sipi Tikka Uoma Vanha Viher Ylä Ala Kurki Joutsen Kettu Karhu Ilves "
    "Hirvi Otava Sampo Kaleva Aro"
)
FI_PLACE_TAILS: tuple[tuple[str, str], ...] = tuple(
    (word, genitive)
    for word, genitive in (
        pair.split("/")
        for pair in _names(
            "mäki/mäen rinne/rinteen niemi/niemen kylä/kylän laakso/laakson harju/harjun "
            "lahti/lahden puisto/puiston kumpu/kummun portti/portin lampi/lammen koski/kosken"
        )
    )
)
SV_PLACE_HEADS = _names(
    "Björk Gran Tall Ek Lind Sjö Strand Berg Äng Skog Kyrk Hag Sol Vik Ås Holm Ros Lönn Al Hassel"
)
SV_PLACE_TAILS = _names("by dal backa näs vik hagen lund sta")
STREET_TAILS = _names("tie kuja polku katu rinne piha kaari")


# Finnish and Swedish letters folded to ASCII for e-mail addresses ("Väinö" -> "vaino").
_ASCII_FOLD = str.maketrans(
    {"ä": "a", "ö": "o", "å": "a", "ü": "u", "é": "e", "Ä": "a", "Ö": "o", "Å": "a"}
)


def email_local_part(given: str, family: str) -> str:
    """``given.family`` in lower-case ASCII, as a school's address book would write it."""
    local = f"{given}.{family}".translate(_ASCII_FOLD).lower()
    return "".join(ch for ch in local if ch.isascii() and (ch.isalnum() or ch in ".-"))
