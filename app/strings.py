"""Every string a visitor reads, in one place per language (the kiosk page gets them as JSON)."""

from __future__ import annotations

import re

# The page's switch offers these; French visitors read the replies (off-topic, clarify, errors) in French.
PAGE_LANGUAGES: tuple[str, ...] = ("en", "vi")


def _french_spacing(text: str) -> str:
    # French sets a space before ? ! : ; and inside « »; a no-break one, so a line never starts with them.
    return re.sub(r" ([?!:;»])", "\u00a0\\1", text).replace("« ", "«\u00a0")


STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Ask about Ho Chi Minh",
        "attract_title": "Questions about Ho Chi Minh?",
        "attract_hint": "Touch the screen to start",
        "placeholder": "Type your question…",
        "ask": "Ask",
        "thinking": "Looking it up…",
        "suggestions_title": "Try asking",
        "sources": "Sources",
        "helpful_question": "Was this helpful?",
        "yes": "Yes",
        "no": "No",
        "thanks": "Thank you!",
        "new_visitor": "Start over",
        "error": "Sorry, something went wrong. Please try again.",
        "busy": "Many visitors are asking right now. Please try again in a moment.",
        "too_fast": "Please wait a moment before asking again.",
        "too_long": "Please keep your question under 500 characters.",
        "off_topic": "I can only answer questions about Ho Chi Minh and this museum. You could ask, for example:",
        "idle_warning": "Still there? The conversation will reset soon.",
        "clarify": "I'm not sure which of these you mean:",
        "judgement": "People and historians judge him differently; the museum presents what the sources document.",
        "not_in_sources": "The museum's sources do not support that claim.",
        "unverified_faq": "Please confirm this at the front desk.",
        "english_answer_note": "This answer is only available in English:",
        "language_switch": "Language",
        "language_name": "English",
    },
    "vi": {
        "title": "Hỏi về Chủ tịch Hồ Chí Minh",
        "attract_title": "Bạn muốn biết về Bác Hồ?",
        "attract_hint": "Chạm vào màn hình để bắt đầu",
        "placeholder": "Nhập câu hỏi của bạn…",
        "ask": "Hỏi",
        "thinking": "Đang tìm…",
        "suggestions_title": "Gợi ý câu hỏi",
        "sources": "Nguồn",
        "helpful_question": "Câu trả lời có hữu ích không?",
        "yes": "Có",
        "no": "Không",
        "thanks": "Cảm ơn bạn!",
        "new_visitor": "Bắt đầu lại",
        "error": "Xin lỗi, đã có lỗi. Vui lòng thử lại.",
        "busy": "Hiện có nhiều khách đang hỏi. Vui lòng thử lại sau giây lát.",
        "too_fast": "Vui lòng chờ một chút trước khi hỏi tiếp.",
        "too_long": "Câu hỏi cần ngắn hơn 500 ký tự.",
        "off_topic": "Tôi chỉ trả lời câu hỏi về Chủ tịch Hồ Chí Minh và bảo tàng này. Bạn có thể hỏi, ví dụ:",
        "idle_warning": "Bạn còn đó không? Cuộc trò chuyện sẽ sớm được làm mới.",
        "clarify": "Tôi chưa rõ bạn muốn hỏi câu nào sau đây:",
        "judgement": "Mỗi người và mỗi nhà sử học có cách đánh giá khác nhau về Người; "
        "bảo tàng trình bày những gì các nguồn tư liệu ghi lại.",
        "not_in_sources": "Các nguồn tư liệu của bảo tàng không xác nhận điều đó.",
        "unverified_faq": "Vui lòng xác nhận lại thông tin này tại quầy lễ tân.",
        "english_answer_note": "Câu trả lời này chỉ có bằng tiếng Anh:",
        "language_switch": "Ngôn ngữ",
        "language_name": "Tiếng Việt",
    },
    "fr": {
        "title": "Questions sur Hô Chi Minh",
        "attract_title": "Des questions sur Hô Chi Minh ?",
        "attract_hint": "Touchez l'écran pour commencer",
        "placeholder": "Tapez votre question…",
        "ask": "Demander",
        "thinking": "Recherche en cours…",
        "suggestions_title": "Idées de questions",
        "sources": "Sources",
        "helpful_question": "Cette réponse vous a-t-elle été utile ?",
        "yes": "Oui",
        "no": "Non",
        "thanks": "Merci !",
        "new_visitor": "Recommencer",
        "error": "Désolé, une erreur s'est produite. Veuillez réessayer.",
        "busy": "Beaucoup de visiteurs posent des questions en ce moment. Veuillez réessayer dans un instant.",
        "too_fast": "Veuillez patienter un instant avant de poser une autre question.",
        "too_long": "Votre question doit faire moins de 500 caractères.",
        "off_topic": "Je ne peux répondre qu'aux questions sur Hô Chi Minh et sur ce musée. "
        "Vous pourriez demander par exemple :",
        "idle_warning": "Vous êtes toujours là ? La conversation va bientôt recommencer.",
        "clarify": "Je ne sais pas bien laquelle de ces questions vous voulez poser :",
        "judgement": "Les avis sur lui varient, y compris chez les historiens ; "
        "le musée présente ce que les sources attestent.",
        "not_in_sources": "Les sources du musée ne confirment pas cette affirmation.",
        "unverified_faq": "Merci de vérifier cette information à l'accueil.",
        "english_answer_note": "Cette réponse n'existe qu'en anglais :",
        "language_switch": "Langue",
        "language_name": "Français",
    },
}

# Suggested questions: tapped on the kiosk and offered after an off-topic question, in the visitor's
# language. Each names him (the gate scores a question alone) and passes the shipped gate (tests/app/test_strings.py).
SUGGESTIONS: dict[str, list[str]] = {
    "en": [
        "When and where was Ho Chi Minh born?",
        "Why is he called Uncle Ho?",
        "What did he do in France?",
        "What happened on 2 September 1945?",
        "Why was Saigon renamed Ho Chi Minh City?",
        "What did his will ask for?",
    ],
    "vi": [
        "Bác Hồ sinh ra khi nào và ở đâu?",
        "Vì sao Người được gọi là Bác Hồ?",
        "Bác Hồ đã làm gì ở Pháp?",
        "Ngày 2 tháng 9 năm 1945, Bác Hồ đã làm gì?",
        "Vì sao Sài Gòn được đổi tên thành Thành phố Hồ Chí Minh?",
        "Di chúc của Bác Hồ dặn lại điều gì?",
    ],
    "fr": [
        "Quand et où Hô Chi Minh est-il né ?",
        "Pourquoi l'appelle-t-on « Oncle Hô » ?",
        "Qu'a fait Hô Chi Minh en France ?",
        "Qu'a fait Hô Chi Minh le 2 septembre 1945 ?",
        "Pourquoi Saïgon a-t-elle été rebaptisée Hô-Chi-Minh-Ville ?",
        "Que demandait le testament de Hô Chi Minh ?",
    ],
}
STRINGS["fr"] = {key: _french_spacing(text) for key, text in STRINGS["fr"].items()}
SUGGESTIONS["fr"] = [_french_spacing(text) for text in SUGGESTIONS["fr"]]


def strings(language: str) -> dict[str, str]:
    return STRINGS.get(language, STRINGS["en"])


def suggestions(language: str) -> list[str]:
    return SUGGESTIONS.get(language, SUGGESTIONS["en"])
